"""TieredChunkStore on CPU: CPU tensors stand in for the GPU pool (no GPU in CI); the disk
store and the cold tier are real folders."""

from __future__ import annotations

import pytest
import torch

from model.engine.store import ChunkTensorStore, ChunkUnavailable
from model.kv.cold import LocalDirColdTier
from model.kv.index import Tier
from model.kv.policy import TierConfig
from model.kv.tiered import TieredChunkStore

CHUNK = 2 * 2 * 2 * 24 * 16 * 2  # k and v, [2 layers, 2 heads, 24 tokens, 16] bf16


def make_kv(seed: int, tokens: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(2, 2, tokens, 16, generator=g).to(torch.bfloat16) for n in "kv"}


def make_store(tmp_path, gpu=2, host=2, disk=100, clock=None, cold=None, **kw):
    cfg = TierConfig(gpu_bytes=gpu * CHUNK, host_bytes=host * CHUNK, disk_bytes=disk * CHUNK,
                     prefill_chunks=1, gpu_coarse_chunks=0, fine_ttl_s=100, coarse_ttl_s=1000,
                     **kw)
    return TieredChunkStore(cfg, tmp_path / "kv", clock=clock or (lambda: 0.0), cold=cold)


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name


def test_store_implements_the_engine_protocol(tmp_path):
    assert isinstance(make_store(tmp_path), ChunkTensorStore)


@pytest.mark.parametrize("write_through", [True, False])
def test_spill_to_host_and_disk_then_load_returns_identical_kv(tmp_path, write_through):
    store = make_store(tmp_path, write_through=write_through)
    for seq in range(6):
        store.put(("cam-a", seq), "fine", make_kv(seq), {"seq": str(seq)})
        store.check_integrity()
    tiers = [store.where(("cam-a", s), "fine") for s in range(6)]
    assert tiers[:2] == [Tier.DISK, Tier.DISK] and Tier.HOST in tiers and tiers[-1] == Tier.GPU
    assert store.stats()["counters"]["spills"] >= 4
    for seq in range(6):
        assert_same(store.get(("cam-a", seq), "fine"), make_kv(seq))
        store.check_integrity()
    assert store.stats()["counters"]["loads"] >= 1
    assert store.meta(("cam-a", 3)) == {"seq": "3"}


def test_disk_overflow_moves_chunks_to_cold_tier_and_reads_them_back(tmp_path):
    cold = LocalDirColdTier(tmp_path / "cold")
    store = make_store(tmp_path, gpu=1, host=0, disk=2, cold=cold, write_through=False)
    for seq in range(4):
        store.put(("cam-a", seq), "coarse", make_kv(seq), {})
    assert store.where(("cam-a", 0), "coarse") == Tier.COLD
    archived = [s for s in range(4) if store.where(("cam-a", s), "coarse") == Tier.COLD]
    assert cold.names() == [f"cam-a/{s:012d}.coarse.safetensors" for s in archived]
    assert [c.seq for c in store.disk.scan()] == [
        s for s in range(4) if store.where(("cam-a", s), "coarse") == Tier.DISK]
    assert_same(store.get(("cam-a", 0), "coarse"), make_kv(0))
    store.check_integrity()


def test_retention_drops_expired_fine_keeps_important_and_coarse_until_its_deadline(tmp_path):
    now = [0.0]
    store = make_store(tmp_path, clock=lambda: now[0])
    for seq in range(3):
        for form in ("fine", "coarse"):
            store.put(("cam-a", seq), form, make_kv(seq), {})
    store.mark_important(("cam-a", 1))
    now[0] = 150.0
    assert store.sweep() == 2
    assert store.sweep() == 0  # idempotent
    assert not store.has(("cam-a", 0), "fine") and store.has(("cam-a", 1), "fine")
    with pytest.raises(ChunkUnavailable, match="expired"):
        store.get(("cam-a", 2), "fine")
    assert_same(store.get(("cam-a", 0), "coarse"), make_kv(0))
    assert store.seqs("cam-a") == [0, 1, 2]
    store.check_integrity()
    now[0] = 1000.0
    store.sweep()
    assert store.seqs("cam-a") == []
    assert list(store.disk.scan()) == []
    store.check_integrity()


def test_corrupt_chunk_file_fails_that_chunk_only_and_is_reported(tmp_path):
    store = make_store(tmp_path, gpu=1, host=0)
    for seq in range(3):
        store.put(("cam-a", seq), "fine", make_kv(seq), {})
    path = store.disk.path("cam-a", 0, "fine")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(ChunkUnavailable, match="lost: corrupt KV chunk file .*000000000000"):
        store.get(("cam-a", 0), "fine")
    assert store.lost[0][0] == ("cam-a", 0) and store.stats()["lost"] == 1
    assert not store.has(("cam-a", 0), "fine")
    assert_same(store.get(("cam-a", 1), "fine"), make_kv(1))
    store.put(("cam-a", 3), "fine", make_kv(3), {})  # the camera keeps running
    store.check_integrity()


def test_new_store_on_same_folder_recovers_every_chunk_meta_and_importance(tmp_path):
    store = make_store(tmp_path)
    for seq in range(4):
        for form in ("fine", "coarse"):
            store.put(("cam-a", seq), form, make_kv(seq + 10 * (form == "coarse")),
                      {"seq": str(seq)})
    store.mark_important(("cam-a", 2))
    del store
    again = make_store(tmp_path, clock=lambda: 150.0)
    assert again.seqs("cam-a") == [0, 1, 2, 3]
    assert again.meta(("cam-a", 1)) == {"seq": "1"}
    assert_same(again.get(("cam-a", 3), "coarse"), make_kv(13))
    again.sweep()  # created times came back from the files: fine expired except important
    assert [again.has(("cam-a", s), "fine") for s in range(4)] == [False, False, True, False]
    again.check_integrity()


def test_pinned_chunks_stay_put_while_new_chunks_arrive(tmp_path):
    store = make_store(tmp_path, gpu=3, host=1)
    store.put(("cam-a", 0), "fine", make_kv(0), {})
    store.pin([("cam-a", 0)])
    for seq in range(1, 6):
        store.put(("cam-a", seq), "fine", make_kv(seq), {})
    assert store.where(("cam-a", 0), "fine") == Tier.GPU
    store.unpin([("cam-a", 0)])
    for seq in range(6, 9):
        store.put(("cam-a", seq), "fine", make_kv(seq), {})
    assert store.where(("cam-a", 0), "fine") != Tier.GPU
    store.check_integrity()


def test_drop_camera_removes_its_chunks_and_files_only(tmp_path):
    store = make_store(tmp_path)
    for cam in ("cam-a", "cam-b"):
        store.put((cam, 0), "coarse", make_kv(0), {})
    store.drop_camera("cam-a")
    assert store.seqs("cam-a") == [] and store.seqs("cam-b") == [0]
    assert [c.camera for c in store.disk.scan()] == ["cam-b"]
    store.check_integrity()


def test_put_with_every_tier_full_of_pinned_chunks_raises_and_changes_nothing(tmp_path):
    from model.kv.index import TierFull

    store = make_store(tmp_path, gpu=1, host=0, disk=1)
    store.put(("cam-a", 0), "fine", make_kv(0), {})
    store.pin([("cam-a", 0)])
    with pytest.raises(TierFull, match="no tier can take"):
        store.put(("cam-a", 1), "fine", make_kv(1), {})
    assert not store.has(("cam-a", 1), "fine") and store.seqs("cam-a") == []
    store.check_integrity()


def test_reconcile_with_database_rows_reports_missing_and_orphans_and_marks_importance(tmp_path):
    store = make_store(tmp_path)
    for seq in (0, 1, 2):
        store.put(("cam-a", seq), "coarse", make_kv(seq), {})
    again = make_store(tmp_path)
    report = again.reconcile("cam-a", db_seqs=[1, 2, 3], important=[2])
    assert (report.missing, report.orphans) == ((3,), (0,))
    assert again.lost == [(("cam-a", 3), "coarse", "in the database but not on disk")]
    assert again.index.record(("cam-a", 2)).important
    assert again.disk.important("cam-a") == {2}


def test_corrupt_cold_object_fails_that_chunk_only(tmp_path):
    cold = LocalDirColdTier(tmp_path / "cold")
    store = make_store(tmp_path, gpu=1, host=0, disk=2, cold=cold, write_through=False)
    for seq in range(4):
        store.put(("cam-a", seq), "coarse", make_kv(seq), {})
    obj = tmp_path / "cold" / "cam-a" / "000000000000.coarse.safetensors"
    obj.write_bytes(obj.read_bytes()[:-7])
    with pytest.raises(ChunkUnavailable, match="lost: corrupt KV chunk file"):
        store.get(("cam-a", 0), "coarse")
    assert store.seqs("cam-a") == [1, 2, 3]
    assert_same(store.get(("cam-a", 1), "coarse"), make_kv(1))
    store.check_integrity()
