"""Engine input validation and bounded queues (real tiny model, no prefill needed)."""

from __future__ import annotations

import numpy as np
import pytest

from model.engine.engine import Engine, EngineConfig


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
