"""Engine input validation and bounded queues (real tiny model, no prefill needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.engine.engine import Engine, EngineConfig
from model.engine.records import ChunkMeta
from model.engine.scheduler import CameraMemory


def test_submit_rejects_bad_shapes_and_non_increasing_seqs_naming_them(tiny_model):
    eng = Engine(tiny_model, EngineConfig())
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        eng.submit("cam", 0, frames, [0.0], wall_origin=0.0)
    eng.submit("cam", 0, frames, [0.0, 4.0], wall_origin=0.0)
    with pytest.raises(ValueError, match="seq 0"):
        eng.submit("cam", 0, frames, [0.0, 4.0], wall_origin=0.0)


def test_full_pending_queue_drops_the_oldest_chunk_and_counts_it(tiny_model):
    eng = Engine(tiny_model, EngineConfig(max_pending=2))
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    for seq in range(4):
        eng.submit("cam", seq, frames, [float(seq)], wall_origin=0.0)
    assert [i.seq for i in eng.scheduler.pending["cam"]] == [2, 3]
    assert eng.scheduler.dropped["cam"] == 2


@pytest.mark.parametrize(("field", "value"), [("coarse_ratio", 0), ("top_k", -1),
                                              ("positions", "absolute"), ("prev_chunks", -2)])
def test_engine_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: value})


def test_coarse_ratio_must_divide_the_vision_slots(tiny_model):
    with pytest.raises(ValueError, match="coarse_ratio 5"):
        Engine(tiny_model, EngineConfig(coarse_ratio=5))


def test_seqs_in_window_maps_stream_seconds_to_overlapping_chunks(tiny_model):
    eng = Engine(tiny_model, EngineConfig())
    mem = CameraMemory("cam", 0)
    for seq in range(3):  # chunks cover [0, 16), [16, 32), [32, 48)
        times = tuple(16.0 * seq + 4.0 * g for g in range(4))
        mem.add(ChunkMeta("cam", seq, times, (5, 5, 5, 5), 144, 1000.0, mem.next_offset))
    eng.memories["cam"] = mem
    assert eng.seqs_in_window("cam", 17.0, 20.0) == (1, 1)
    assert eng.seqs_in_window("cam", 15.0, 33.0) == (0, 2)
    assert eng.seqs_in_window("cam", 47.0, 60.0) == (2, 2)
    assert eng.seqs_in_window("cam", 48.0, 60.0) is None
    assert eng.wall_origin("cam") == 1000.0
    assert mem.forget_before(1) == 1 and [m.seq for m in mem.history()] == [1, 2]
    with pytest.raises(ValueError, match="before its start"):
        eng.seqs_in_window("cam", 5.0, 1.0)


def test_cameras_with_different_frame_sizes_share_a_step(tiny_model):
    eng = Engine(tiny_model, EngineConfig())
    rng = np.random.default_rng(0)
    eng.submit("a", 0, rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), [0.0], 0.0)
    eng.submit("b", 0, rng.integers(0, 256, (8, 48, 64, 3), dtype=np.uint8), [0.0, 4.0], 0.0)
    with pytest.raises(ValueError, match="uint8"):
        eng.submit("c", 0, np.zeros((4, 8, 8, 3), dtype=np.float32), [0.0], 0.0)
    results = eng.step()
    assert sorted((r.camera, r.n_tokens > 144) for r in results) == [("a", True), ("b", True)]
    assert eng.store.get(("b", 0), "fine")["k"].shape[2] == eng.memories["b"].metas[0].n_tokens


def test_prune_forgets_records_of_chunks_the_store_dropped(tiny_model):
    eng = Engine(tiny_model, EngineConfig())
    mem = CameraMemory("cam", 0)
    for seq in range(4):
        meta = ChunkMeta("cam", seq, (4.0 * seq,), (5,), 144, 0.0, mem.next_offset)
        mem.add(meta)
        if seq >= 2:  # retention dropped chunks 0 and 1 from the store
            eng.store.put(("cam", seq), "coarse", {"summary": torch.zeros(1)}, meta.to_meta())
    eng.memories["cam"] = mem
    assert eng.prune("cam") == 2
    assert [m.seq for m in mem.history()] == [2, 3]
