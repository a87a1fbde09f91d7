"""The engine on real footage: vtest.avi sampled at 1 fps through prefill, ask and standing.

Real video, real tiny model (random weights: the real ones cannot run here), so the test
checks the memory's shapes, bookkeeping and the answer's structure, not its wording.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.engine.engine import Engine, EngineConfig
from model.intervals import parse_intervals


def sample_1fps(path, n_frames: int) -> tuple[np.ndarray, list[float]]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames, times, index = [], [], 0
    while len(frames) < n_frames:
        ok, bgr = cap.read()
        assert ok, f"vtest ended after {index} frames"
        if index % round(fps) == 0:
            frames.append(cv2.cvtColor(cv2.resize(bgr, (96, 72)), cv2.COLOR_BGR2RGB))
            times.append(index / fps)
        index += 1
    cap.release()
    return np.stack(frames), times


@pytest.mark.slow
def test_vtest_chunks_become_fine_and_coarse_memory_that_answers(tiny_model, vtest_path):
    frames, times = sample_1fps(vtest_path, 32)
    eng = Engine(tiny_model, EngineConfig(max_new_tokens=4))
    for seq in range(2):
        part = slice(16 * seq, 16 * seq + 16)
        eng.submit("street", seq, frames[part], times[part][::4], wall_origin=1.7e9)
    results = eng.step()  # a backlog of two chunks: both in one step (camera_window)
    assert [(r.camera, r.seq) for r in results] == [("street", 0), ("street", 1)]
    assert eng.step() == []
    dims = eng.runner.dims
    for r in results:
        meta = eng.memories["street"].metas[r.seq]
        assert meta.group_times == tuple(times[16 * r.seq:16 * r.seq + 16:4])
        fine = eng.store.get(("street", r.seq), "fine")
        coarse = eng.store.get(("street", r.seq), "coarse")
        assert fine["k"].shape == (dims.n_layers, dims.n_kv_heads, r.n_tokens, dims.head_dim)
        assert coarse["k"].shape[2] == meta.n_coarse_tokens(4) < r.n_tokens
        assert coarse["summary"].shape == (dims.n_layers, dims.n_kv_heads, dims.head_dim)
    res = eng.ask("street", "When did a person enter the scene?")
    assert [s for s, _ in res.chunks_used] == [0, 1]
    assert res.intervals == parse_intervals(res.text)
    p = eng.standing("street", 1, ["Is anyone lying on the floor? Answer yes or no."])
    assert 0.0 < p[0] < 1.0
