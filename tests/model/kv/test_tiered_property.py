"""Random event sequences against a real TieredChunkStore (CPU pools, real folder): every
readable chunk reads back bit-identical, pools and files always match the index; with
every form persisted or fine KV only of important chunks, disk writes inline or behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.engine.store import ChunkUnavailable
from model.kv.cold import LocalDirColdTier
from model.kv.index import Tier, TierFull
from model.kv.policy import TierConfig
from model.kv.tiered import TieredChunkStore

UNIT = 2 * 2 * 4 * 8 * 2  # bytes of one token-block: k and v [2, 2, 4, 8] bf16


def tensors(seed: int, blocks: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(2, 2, 4 * blocks, 8, generator=g).to(torch.bfloat16) for n in "kv"}


steps = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(("fine", "coarse")), st.integers(1, 3)),
    st.tuples(st.just("get"), st.integers(0, 12), st.sampled_from(("fine", "coarse"))),
    st.tuples(st.just("pin"), st.integers(0, 12)),
    st.tuples(st.just("unpin"), st.integers(0, 12)),
    st.tuples(st.just("important"), st.integers(0, 12)),
    st.tuples(st.just("sweep"), st.integers(0, 60)),
    st.tuples(st.just("budget"), st.sampled_from(("gpu", "host", "disk")), st.integers(0, 12)),
), max_size=30)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.booleans(), st.booleans(), st.sampled_from(("all", "important")),
       st.booleans())
def test_random_store_events_keep_bytes_identical_and_tiers_consistent(
        ops, cold, restart, persist_fine, write_behind):
    with tempfile.TemporaryDirectory() as tmp:
        now = [0.0]
        cfg = TierConfig(gpu_bytes=4 * UNIT, host_bytes=3 * UNIT, disk_bytes=10 * UNIT,
                         prefill_chunks=1, gpu_coarse_chunks=1, fine_ttl_s=50, coarse_ttl_s=100,
                         persist_fine=persist_fine, write_behind=write_behind)

        def open_store():
            return TieredChunkStore(cfg, Path(tmp) / "kv", clock=lambda: now[0],
                                    cold=LocalDirColdTier(Path(tmp) / "cold") if cold else None)

        store, written, seq = open_store(), {}, 0
        for op in ops:
            if op[0] == "put":
                key = ("cam", seq)
                try:
                    store.put(key, op[1], tensors(seq * 2 + (op[1] == "coarse"), op[2]), {})
                    written[(seq, op[1])] = op[2]
                except TierFull:
                    pass
                seq += op[1] == "coarse"
            elif op[0] == "get":
                want = written.get((op[1], op[2]))
                try:
                    got = store.get(("cam", op[1]), op[2])
                    assert want is not None
                    ref = tensors(op[1] * 2 + (op[2] == "coarse"), want)
                    assert all(torch.equal(got[n], ref[n]) for n in "kv")
                except ChunkUnavailable:
                    assert store.where(("cam", op[1]), op[2]) in (None, Tier.DROPPED, Tier.LOST)
            elif op[0] == "pin":
                store.pin([("cam", op[1])])
            elif op[0] == "unpin":
                store.unpin([("cam", op[1])])
            elif op[0] == "important":
                store.mark_important(("cam", op[1]))
            elif op[0] == "sweep":
                now[0] += op[1]
                store.sweep()
            else:
                try:
                    store.set_budgets(**{op[1]: op[2] * UNIT})
                except (ValueError, TierFull):
                    pass
            store.check_integrity()
        if restart and not cold:
            durable = {(s, f) for (s, f) in written
                       if store.index.entry(("cam", s), f) is not None
                       and store.index.entry(("cam", s), f).durable}
            assert store.close()  # a clean shutdown: the writer acknowledged every write
            store = open_store()
            store.check_integrity()
            for s, f in durable:
                ref = tensors(s * 2 + (f == "coarse"), written[(s, f)])
                assert torch.equal(store.get(("cam", s), f)["k"], ref["k"])
