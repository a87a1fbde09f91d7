"""Shared fixtures. Ray must bind loopback only in tests."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (CI and the main checkout); one level further up for
# git worktrees kept in a sub-folder; XLWATCH_SHARED_DATA overrides both.
SHARED_DATA = Path(
    os.environ.get("XLWATCH_SHARED_DATA")
    or next(
        (p / "shared" / "data" for p in (_ROOT.parent, _ROOT.parent.parent) if (p / "shared" / "data").is_dir()),
        _ROOT.parent / "shared" / "data",
    )
)
VTEST = SHARED_DATA / "vtest.avi"


@pytest.fixture
def vtest_path() -> Path:
    """OpenCV's pedestrian sample from ../shared/data (never copied into the repo)."""
    if not VTEST.exists():
        from tests.services import missing

        missing(f"test footage not found at {VTEST}")
    return VTEST
