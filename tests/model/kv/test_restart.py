"""Restart recovery end to end: real tiny checkpoint, real engine, real footage, real disk.

The model is the tiny random checkpoint (no real weights here); everything else is the
production path: vtest.avi decoded with PyAV, chunked prefill into a TieredChunkStore
whose small GPU budget (CPU tensors stand in for the GPU pool) forces spills to host and
disk, then a brand-new store and engine on the same data folder.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from model import load_model
from model.engine.engine import Engine, EngineConfig
from model.kv.index import Tier
from model.kv.policy import TierConfig
from model.kv.tiered import TieredChunkStore
from model.tiny import make_tiny_checkpoint

QUESTION = "When did a person enter the scene?"


def sample_frames(path, n: int, every: int = 10) -> np.ndarray:
    """n RGB frames at 1 fps from the 10 fps clip."""
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return np.stack(out)


FRAMES = 8  # two groups per chunk keep the CPU prefill short; the engine takes 1..n groups


def make_engine(model, data_dir, chunk_bytes=1 << 30, clock=lambda: 1000.0):
    cfg = TierConfig(gpu_bytes=3 * chunk_bytes, host_bytes=chunk_bytes,
                     disk_bytes=1000 * chunk_bytes, prefill_chunks=1, gpu_coarse_chunks=1,
                     fine_ttl_s=3600, coarse_ttl_s=7200)
    store = TieredChunkStore(cfg, data_dir, clock=clock)
    return Engine(model, EngineConfig(prev_chunks=1, top_k=1, max_new_tokens=6), store), store


def submit(engine, frames, seqs):
    for seq in seqs:
        times = [float(t) for t in range(FRAMES * seq, FRAMES * (seq + 1), 4)]
        engine.submit("cam-a", seq, frames[FRAMES * seq:FRAMES * (seq + 1)], times,
                      wall_origin=1e9)
    engine.run_until_idle()


@pytest.mark.slow
def test_new_engine_on_same_data_dir_answers_old_footage_identically(tmp_path, vtest_path):
    torch.manual_seed(0)
    model = load_model(make_tiny_checkpoint(tmp_path / "ckpt"))
    frames = sample_frames(vtest_path, 4 * FRAMES)
    engine, store = make_engine(model, tmp_path / "kv")
    submit(engine, frames, [0])
    chunk_bytes = store.index.entry(("cam-a", 0), "fine").nbytes
    store.set_budgets(gpu=3 * chunk_bytes, host=chunk_bytes)  # now it must spill
    submit(engine, frames, [1, 2])
    tiers = {store.where(("cam-a", s), "fine") for s in range(3)}
    assert tiers - {Tier.GPU}, "the budget should have spilled some fine KV off the GPU"
    before = engine.ask("cam-a", QUESTION)
    store.check_integrity()
    del engine, store

    now = [1000.0]
    engine2, store2 = make_engine(model, tmp_path / "kv", chunk_bytes, clock=lambda: now[0])
    assert engine2.recover("cam-a") == 3
    after = engine2.ask("cam-a", QUESTION)
    assert after.text == before.text
    assert after.intervals == before.intervals
    assert after.chunks_used == before.chunks_used
    assert after.scores == pytest.approx(before.scores, abs=0, rel=0)

    submit(engine2, frames, [3])  # and the camera keeps appending after the restart
    assert store2.seqs("cam-a") == [0, 1, 2, 3]
    store2.check_integrity()

    # A day later the fine KV is gone but questions still run on the coarse form.
    now[0] += 3600
    store2.mark_important(("cam-a", 3))
    assert store2.sweep() == 3
    late = engine2.ask("cam-a", QUESTION)
    assert {seq for seq, kind in late.chunks_used if kind == "dense"} <= {3}
    assert [s for s, _ in late.chunks_used] == [0, 1, 2, 3]
    store2.check_integrity()
