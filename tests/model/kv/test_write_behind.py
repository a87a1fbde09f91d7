"""The disk tier off the critical path: fine KV persisted only for important chunks, and
write-behind (a put never waits for the disk; a restart recovers what the writer
acknowledged). Real folders; CPU tensors stand in for the GPU pool (no GPU in CI)."""

from __future__ import annotations

import threading

import pytest

from model.engine.store import ChunkUnavailable
from model.kv.index import Tier
from tests.model.kv.test_tiered import assert_same, make_kv, make_store


def files(store):
    store.flush()
    return sorted((cf.seq, cf.form) for cf in store.disk.scan())


def test_only_coarse_and_important_fine_kv_reach_the_disk(tmp_path):
    store = make_store(tmp_path, gpu=4, host=4, persist_fine="important")
    for seq in range(3):
        store.put(("cam", seq), "fine", make_kv(seq), {})
        store.put(("cam", seq), "coarse", make_kv(100 + seq, tokens=6), {})
    assert files(store) == [(0, "coarse"), (1, "coarse"), (2, "coarse")]
    store.mark_important(("cam", 1))  # a CV event in chunk 1: its fine KV is kept
    assert files(store) == [(0, "coarse"), (1, "coarse"), (1, "fine"), (2, "coarse")]
    store.check_integrity()


def test_plain_fine_kv_past_the_host_pool_is_dropped_not_written(tmp_path):
    store = make_store(tmp_path, gpu=3, host=2, persist_fine="important")
    for seq in range(8):
        store.put(("cam", seq), "fine", make_kv(seq), {})
        store.put(("cam", seq), "coarse", make_kv(100 + seq, tokens=6), {})
    store.mark_important(("cam", 7))
    dropped = [s for s in range(8) if store.where(("cam", s), "fine") == Tier.DROPPED]
    assert dropped and 7 not in dropped
    assert all(form != "fine" or seq == 7 for seq, form in files(store))
    with pytest.raises(ChunkUnavailable, match="memory only"):
        store.get(("cam", dropped[0]), "fine")
    assert_same(store.get(("cam", 7), "fine"), make_kv(7))
    assert all(store.has(("cam", s), "coarse") for s in range(8))  # coarse stays
    store.check_integrity()


class GatedDisk:
    """Holds the writer thread inside `write` until released (a slow disk)."""

    def __init__(self, disk):
        self.disk, self.gate, self.entered = disk, threading.Event(), threading.Event()
        self.real = disk.write
        disk.write = self.write

    def write(self, *args, **kw):
        self.entered.set()
        assert self.gate.wait(30)
        return self.real(*args, **kw)


def test_a_put_does_not_wait_for_the_disk_and_reads_see_queued_writes(tmp_path):
    store = make_store(tmp_path, gpu=1, host=0, write_behind=True)
    gated = GatedDisk(store.disk)
    for seq in range(3):  # the GPU pool holds one: the others go to disk, queued
        store.put(("cam", seq), "fine", make_kv(seq), {})
    assert gated.entered.wait(10) and store.stats()["writer"]["ops"] >= 2
    assert_same(store.get(("cam", 0), "fine"), make_kv(0))  # read-your-writes
    assert store.stats()["writer"]["recovery_point"] == {}
    gated.gate.set()
    assert store.flush(30)
    assert store.stats()["writer"]["recovery_point"] == {"cam": 2}
    store.check_integrity()
    assert store.close()
    again = make_store(tmp_path, gpu=1, host=0, write_behind=True)
    for seq in range(3):
        assert_same(again.get(("cam", seq), "fine"), make_kv(seq))


def test_a_crash_loses_only_writes_the_writer_had_not_acknowledged(tmp_path):
    store = make_store(tmp_path, gpu=4, host=4, write_behind=True)
    store.put(("cam", 0), "coarse", make_kv(0, tokens=6), {})
    assert store.flush(30)
    gated = GatedDisk(store.disk)
    store.put(("cam", 1), "coarse", make_kv(1, tokens=6), {})
    assert gated.entered.wait(10)
    point = store.stats()["writer"]["recovery_point"]
    assert point == {"cam": 0}
    # the process dies here: a new store over the same folder (the writer never resumes)
    again = make_store(tmp_path, gpu=4, host=4)
    assert again.seqs("cam") == [0]  # exactly what the recovery point said
    assert_same(again.get(("cam", 0), "coarse"), make_kv(0, tokens=6))
    gated.gate.set()


def test_a_delete_after_a_queued_write_of_the_same_chunk_wins(tmp_path):
    store = make_store(tmp_path, gpu=4, host=4, write_behind=True)
    gated = GatedDisk(store.disk)
    store.put(("cam", 0), "coarse", make_kv(0, tokens=6), {})
    store.put(("cam", 1), "coarse", make_kv(1, tokens=6), {})
    assert gated.entered.wait(10)
    store.drop_camera("cam")
    gated.gate.set()
    assert files(store) == []
    store.check_integrity()
