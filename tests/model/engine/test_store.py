"""InMemoryChunkStore honours the ChunkTensorStore protocol (real tensors, no fakes)."""

import pytest
import torch

from model.engine.store import ChunkTensorStore, ChunkUnavailable, InMemoryChunkStore


def test_put_then_get_returns_identical_tensors_and_merged_meta():
    store = InMemoryChunkStore()
    assert isinstance(store, ChunkTensorStore)
    k = torch.randn(2, 1, 5, 4)
    store.put(("cam", 3), "fine", {"k": k, "v": -k}, {"layout": "a"})
    store.put(("cam", 3), "coarse", {"k": k[:, :, :2], "v": k[:, :, :2]}, {"times": "b"})
    got = store.get(("cam", 3), "fine")
    assert torch.equal(got["k"], k) and torch.equal(got["v"], -k)
    assert store.meta(("cam", 3)) == {"layout": "a", "times": "b"}
    assert store.has(("cam", 3), "coarse") and not store.has(("cam", 4), "fine")


def test_missing_chunk_raises_chunk_unavailable_naming_key_and_form():
    store = InMemoryChunkStore()
    with pytest.raises(ChunkUnavailable) as err:
        store.get(("cam", 9), "fine")
    assert err.value.key == ("cam", 9) and err.value.form == "fine"
    assert isinstance(err.value, KeyError)
    with pytest.raises(ValueError, match="form"):
        store.has(("cam", 9), "medium")


def test_seqs_are_ascending_per_camera_and_drop_camera_removes_only_that_camera():
    store = InMemoryChunkStore()
    t = {"k": torch.zeros(1), "v": torch.zeros(1)}
    for seq in (5, 1, 3):
        store.put(("a", seq), "coarse", t, {})
    store.put(("b", 0), "fine", t, {})
    store.pin([("a", 1)])
    store.mark_important(("a", 3))
    assert store.seqs("a") == [1, 3, 5] and store.seqs("b") == [0]
    store.drop_camera("a")
    assert store.seqs("a") == [] and store.seqs("b") == [0]
    assert not store.pinned(("a", 1)) and ("a", 3) not in store.important


def test_pins_are_counted_so_two_queries_keep_a_chunk_pinned_until_both_unpin():
    store = InMemoryChunkStore()
    store.pin([("a", 1)])
    store.pin([("a", 1)])
    store.unpin([("a", 1)])
    assert store.pinned(("a", 1))
    store.unpin([("a", 1)])
    assert not store.pinned(("a", 1))
