"""The memory core's tests run the real engine over the tiny random checkpoint (the real
weights and a GPU cannot run here) and a real SQLite database."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import config_from_dict
from pipeline.messages import ModelChunk
from pipeline.wiring import cipher, database
from storage import repo
from tests.model.engine.conftest import tiny_model  # noqa: F401 - the shared fixture

CAMERAS = ("lobby", "yard", "door")


@pytest.fixture()
def cfg(tmp_path):
    return config_from_dict({"data_dir": str(tmp_path / "data")})


@pytest.fixture()
def db(cfg):
    db = database(cfg)
    with db.session() as s:
        for name in CAMERAS:
            repo.add_camera(s, name, f"rtsp://10.0.0.9/{name}", cipher(cfg))
    return db


def make_chunk(camera: str, seq: int, groups: int = 4, value: int = 0,
               important: bool = False, origin: float = 1_795_000_000.0) -> ModelChunk:
    times = tuple(float(seq * 4 * groups + i) for i in range(4 * groups))
    frames = np.full((4 * groups, 16, 16, 3), (seq * 37 + value) % 255, dtype=np.uint8)
    return ModelChunk(camera, seq, times, origin, frames, important)
