"""Shared fixtures. Ray must bind loopback only in tests."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VTEST = SHARED_DATA / "vtest.avi"


@pytest.fixture
def vtest_path() -> Path:
    """OpenCV's pedestrian sample from ../shared/data (never copied into the repo)."""
    if not VTEST.exists():
        from tests.services import missing

        missing(f"test footage not found at {VTEST}")
    return VTEST
