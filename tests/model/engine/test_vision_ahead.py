"""Vision encoded ahead in one large batch (EngineConfig.vision_ahead) changes no value.

Real tiny model, fp32, CPU (the GPU, where the batching pays, cannot run here): the
memory of two cameras fed with vision_ahead > 0 equals, tensor for tensor, the memory the
default engine (one vision call per step) builds from the same frames.
"""

from __future__ import annotations

import pytest
from torch.testing import assert_close

from model.engine.engine import Engine, EngineConfig
from tests.model.engine.reference import chunk_frames

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _feed_two_cameras(eng: Engine, frames) -> None:
    for i, (f, ts) in enumerate(frames):
        eng.submit("a", i, f, ts, wall_origin=0.0)
        eng.submit("b", i, f[::-1].copy(), [t + 50.0 for t in ts], wall_origin=0.0)
    eng.run_until_idle()


def test_vision_ahead_memory_equals_per_step_encoding(tiny_model):
    frames = chunk_frames(4, seed=3)
    base = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=4))
    ahead = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=4, vision_ahead=8))
    calls = []
    encode = ahead._encode_items
    ahead._encode_items = lambda items: calls.append(len(items)) or encode(items)
    _feed_two_cameras(base, frames)
    _feed_two_cameras(ahead, frames)
    assert calls == [8]  # all 8 pending chunks of both cameras in the first step's call
    assert not ahead.features  # every encoded-ahead feature was consumed
    for cam in ("a", "b"):
        assert ahead.store.seqs(cam) == base.store.seqs(cam) == [0, 1, 2, 3]
        for seq in range(4):
            for form in ("fine", "coarse"):
                want = base.store.get((cam, seq), form)
                got = ahead.store.get((cam, seq), form)
                for name in want:
                    assert_close(got[name], want[name], **TOL)


def test_vision_ahead_rejects_negative_values():
    with pytest.raises(ValueError, match="vision_ahead"):
        EngineConfig(vision_ahead=-1)
