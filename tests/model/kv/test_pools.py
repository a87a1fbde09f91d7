"""Pools on CPU, both as plain tensor dicts and as one preallocated slab (the CUDA default,
exercised here on CPU memory since CI has no GPU)."""

from __future__ import annotations

import pytest
import torch

from model.kv.pools import ALIGN, HostPool, _Slab


def kv(seed: int, tokens: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"k": torch.randn(2, 2, tokens, 8, generator=g).to(torch.bfloat16),
            "summary": torch.randn(2, 2, 8, generator=g)}


@pytest.mark.parametrize("preallocate", [False, True])
def test_pool_returns_identical_tensors_after_churn_and_accounts_bytes(preallocate):
    pool = HostPool(capacity=20_000, preallocate=preallocate)
    sizes = {i: 3 + 5 * (i % 4) for i in range(12)}
    held = []
    for i, tokens in sizes.items():
        ek = ("cam", i, "fine")
        data = kv(i, tokens)
        nbytes = sum(t.numel() * t.element_size() for t in data.values())
        while pool.used + nbytes > pool.capacity:
            gone = held.pop(0)
            out = pool.pop(gone)
            assert torch.equal(out["k"], kv(gone[1], sizes[gone[1]])["k"])
        pool.put(ek, data)
        held.append(ek)
    for ek in held:
        got = pool.get(ek)
        want = kv(ek[1], sizes[ek[1]])
        assert all(torch.equal(got[n], want[n]) for n in want)
    assert pool.used == sum(
        sum(t.numel() * t.element_size() for t in kv(ek[1], sizes[ek[1]]).values())
        for ek in held)
    assert pool.fallback_allocs == 0


def test_pool_refuses_bytes_beyond_its_capacity():
    pool = HostPool(capacity=100)
    with pytest.raises(MemoryError, match="host pool over its budget: 0 \\+ 1024 > 100 B"):
        pool.put(("cam", 0, "fine"), {"k": torch.zeros(256)})


def test_slab_coalesces_freed_neighbours_into_one_span():
    slab = _Slab(8 * ALIGN, torch.device("cpu"), pin=False)
    offs = [slab.alloc(ALIGN) for _ in range(8)]
    assert offs == [i * ALIGN for i in range(8)] and slab.alloc(1) is None
    for off in (offs[1], offs[3], offs[2]):
        slab.release(off, ALIGN)
    assert slab.free == [(ALIGN, 3 * ALIGN)]
    assert slab.alloc(3 * ALIGN) == ALIGN


def test_plain_pool_keeps_an_owning_tensor_but_copies_a_view_of_a_larger_buffer():
    pool = HostPool(capacity=1 << 20, preallocate=False, pin_memory=False)
    own = torch.arange(64, dtype=torch.float32)
    big = torch.arange(1024, dtype=torch.float32)
    pool.put(("cam", 0, "fine"), {"k": own})
    pool.put(("cam", 1, "fine"), {"k": big[:64]})
    assert pool.get(("cam", 0, "fine"))["k"].data_ptr() == own.data_ptr()
    kept = pool.get(("cam", 1, "fine"))["k"]
    assert kept.untyped_storage().nbytes() == 256 and torch.equal(kept, big[:64])
    assert pool.used == 512
