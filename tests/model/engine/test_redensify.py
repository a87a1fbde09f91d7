"""Dense again: a chunk whose fine KV retention dropped, prefilled again from its frames.

Real parts: the tiny random checkpoint (the real weights cannot run here) and the real
TieredChunkStore on a temp dir with its own retention (fine_ttl_s, sweep) on a clock the
test moves. The reference is the fine KV the first prefill stored.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from model.engine.engine import Engine, EngineConfig
from model.kv.disk import DiskKVStore
from model.kv.policy import GIB, TierConfig
from model.kv.tiered import TieredChunkStore
from tests.model.engine.reference import chunk_frames, feed

QUESTION = "When did a person enter the scene?"
TOL = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture()
def expired(tiny_model, tmp_path):
    """Four chunks prefilled at t = 0; at t = 120 s retention dropped every fine form."""
    now = [0.0]
    store = TieredChunkStore(TierConfig(gpu_bytes=GIB, host_bytes=GIB, disk_bytes=GIB,
                                        prefill_chunks=1, fine_ttl_s=60, coarse_ttl_s=3600,
                                        persist_fine="important"),
                             DiskKVStore(tmp_path / "kv"), clock=lambda: now[0])
    eng = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=4, top_k=2,
                                          max_new_tokens=4), store)
    chunks = chunk_frames(4, seed=3)
    feed(eng, "cam", chunks)
    first = {s: {n: t.clone() for n, t in store.get(("cam", s), "fine").items()}
             for s in range(4)}
    now[0] = 120.0
    assert store.sweep() > 0
    assert not any(store.has(("cam", s), "fine") for s in range(4))
    return eng, chunks, first


def test_a_chunk_prefilled_again_equals_its_first_prefill_when_its_context_is_dense(
        expired):
    eng, chunks, first = expired
    frames = {s: c[0] for s, c in enumerate(chunks)}
    # chunk 0's context is the prefix alone; chunk 1's is chunk 0 dense, dense again now
    for seq in (0, 1):
        assert eng.redensify("cam", seq, frames[seq]) is True
        got = eng.store.get(("cam", seq), "fine")
        assert_close(got["k"], first[seq]["k"], **TOL)
        assert_close(got["v"], first[seq]["v"], **TOL)
    assert eng.counters["chunks_redensified"] == 2
    assert eng.redensify("cam", 1, frames[1]) is False  # it has its fine KV again
    # chunk 3's neighbour (chunk 2) is coarse only: close to the first prefill, not equal
    assert eng.redensify("cam", 3, frames[3]) is True
    got = eng.store.get(("cam", 3), "fine")["k"]
    rel = ((got - first[3]["k"]).norm() / first[3]["k"].norm()).item()
    assert 0.0 < rel < 0.5


def test_a_question_reads_a_chunk_dense_once_it_is_prefilled_again(expired):
    eng, chunks, _first = expired
    before = eng.prepare_question("cam", QUESTION, boosts={2: 100.0})
    assert 2 in before.wanted_dense and dict(before.used)[2] == "coarse"
    eng.redensify("cam", 2, chunks[2][0])
    questions = eng.counters["questions"]
    after = eng.prepare_question("cam", QUESTION, boosts={2: 100.0}, again=True)
    assert dict(after.used)[2] == "dense" and 2 not in after.wanted_dense
    assert eng.counters["questions"] == questions  # the same question, not counted twice
    assert eng.finish_question(after).chunks_used == after.used


def test_bad_frames_or_an_unknown_chunk_are_refused_and_change_nothing(expired):
    eng, chunks, _first = expired
    with pytest.raises(KeyError, match="chunk 9"):
        eng.redensify("cam", 9, chunks[0][0])
    with pytest.raises(KeyError, match="camera 'gate'"):
        eng.redensify("gate", 0, chunks[0][0])
    with pytest.raises(ValueError, match=r"seq 1 must be \[4 \* 4"):
        eng.redensify("cam", 1, chunks[0][0][:8])
    with pytest.raises(ValueError, match="uint8"):
        eng.redensify("cam", 1, torch.zeros(tuple(chunks[1][0].shape), dtype=torch.float32))
    assert not eng.store.has(("cam", 1), "fine")
    assert eng.counters["chunks_redensified"] == 0
