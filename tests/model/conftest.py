"""Fixtures for the model tests: one tiny random checkpoint per session.

The tiny checkpoint stands in for the real BAAI/Video-XL-2 weights, which cannot be
downloaded here; it has the released layout and key names.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_videoxl2"), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint_dir: Path):
    from model.checkpoint import load_model

    return load_model(tiny_checkpoint_dir)
