"""GpuPool and HostPool: the bytes of the two memory tiers, with byte accounting.

Owns tensors only. Each pool either carves chunks out of one preallocated byte slab
(the default on CUDA: the GPU slab avoids allocator fragmentation over days of churn and
the host slab is page-locked once, since pinning per copy is slow) or keeps plain tensor
dicts (the default on CPU, where CI runs both pools as CPU tensors). Copies into a GPU
pool and out of it run on a side CUDA stream and are fenced by events, so a spill does
not stall the compute stream. It deliberately decides nothing: the index says what moves.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

ALIGN = 256  # bytes; keeps every carved tensor aligned for vectorised kernels
EntryKey = tuple[str, int, str]


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class _Slab:
    """First-fit allocator over one byte tensor with coalescing free list."""

    def __init__(self, capacity: int, device: torch.device, pin: bool):
        self.buf = torch.empty(capacity, dtype=torch.uint8, device=device, pin_memory=pin)
        self.free: list[tuple[int, int]] = [(0, capacity)] if capacity else []  # (off, size)

    def alloc(self, n: int) -> int | None:
        n = -(-n // ALIGN) * ALIGN
        for i, (off, size) in enumerate(self.free):
            if size >= n:
                if size == n:
                    self.free.pop(i)
                else:
                    self.free[i] = (off + n, size - n)
                return off
        return None

    def release(self, off: int, n: int) -> None:
        n = -(-n // ALIGN) * ALIGN
        i = bisect.bisect_left(self.free, (off, 0))
        self.free.insert(i, (off, n))
        # coalesce with the right then the left neighbour
        if i + 1 < len(self.free) and off + n == self.free[i + 1][0]:
            self.free[i] = (off, n + self.free.pop(i + 1)[1])
        if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == off:
            left = self.free.pop(i - 1)
            self.free[i - 1] = (left[0], left[1] + self.free[i - 1][1])

    def view(self, off: int, like: torch.Tensor) -> torch.Tensor:
        raw = self.buf[off : off + _nbytes(like)]
        return raw.view(like.dtype).view(like.shape)


@dataclass
class _Held:
    tensors: dict[str, torch.Tensor]
    spans: list[tuple[int, int]]  # slab (offset, bytes); empty for plain tensors
    nbytes: int
    ready: torch.cuda.Event | None = None  # copy into this pool still in flight


class TensorPool:
    """One memory tier. `put` copies tensors in; `get` returns the pool's own tensors."""

    def __init__(self, name: str, device: str | torch.device, capacity: int, *,
                 preallocate: bool | None = None, pin_memory: bool | None = None):
        self.name = name
        self.device = torch.device(device)
        self.capacity = capacity
        cuda = torch.cuda.is_available()
        if pin_memory is None:
            pin_memory = cuda and self.device.type == "cpu"
        if preallocate is None:
            preallocate = cuda
        # Slack for alignment waste; fragmentation beyond it falls back to plain tensors.
        self._slab = _Slab(capacity + capacity // 16, self.device, pin_memory) \
            if preallocate else None
        self._pin = pin_memory
        self._held: dict[EntryKey, _Held] = {}
        self.used = 0
        self.fallback_allocs = 0
        self._streams: dict[torch.device, torch.cuda.Stream] = {}  # side copy stream per GPU

    def __contains__(self, ek: EntryKey) -> bool:
        return ek in self._held

    def put(self, ek: EntryKey, tensors: dict[str, torch.Tensor]) -> None:
        """Copy `tensors` into the pool (asynchronously when a GPU is at either end)."""
        if ek in self._held:
            self.pop(ek)
        nbytes = sum(_nbytes(t) for t in tensors.values())
        if self.used + nbytes > self.capacity:
            raise MemoryError(
                f"{self.name} pool over its budget: {self.used} + {nbytes} > {self.capacity} B"
            )
        if self._slab is None and all(self._adoptable(t) for t in tensors.values()):
            # Same device, owning its whole storage: keep it, a copy would only cost time.
            self._held[ek] = _Held(dict(tensors), [], nbytes)
            self.used += nbytes
            return
        dst, spans = self._allocate(tensors)
        ready = self._copy(dst, tensors)
        self._held[ek] = _Held(dst, spans, nbytes, ready)
        self.used += nbytes

    def get(self, ek: EntryKey) -> dict[str, torch.Tensor]:
        held = self._held[ek]
        if held.ready is not None:
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).wait_event(held.ready)
            else:
                held.ready.synchronize()  # host copy of a spill: wait before the CPU reads it
        return dict(held.tensors)

    def pop(self, ek: EntryKey) -> dict[str, torch.Tensor]:
        """Remove and return a copy that no longer aliases the slab (the span is reused)."""
        held = self._held.pop(ek)
        out = self.get_from(held)
        for off, n in held.spans:
            self._slab.release(off, n)
        self.used -= held.nbytes
        return out

    def discard(self, ek: EntryKey) -> None:
        held = self._held.pop(ek, None)
        if held is None:
            return
        if held.ready is not None:
            held.ready.synchronize()  # the span may still be the target of a copy
        for off, n in held.spans:
            self._slab.release(off, n)
        self.used -= held.nbytes

    def wait(self, ek: EntryKey) -> None:
        """Block the CPU until the copy into `ek` finished (before its source is reused)."""
        ready = self._held[ek].ready
        if ready is not None:
            ready.synchronize()

    def get_from(self, held: _Held) -> dict[str, torch.Tensor]:
        if held.ready is not None:
            held.ready.synchronize()
        if not held.spans:
            return dict(held.tensors)
        return {k: v.clone() for k, v in held.tensors.items()}

    def keys(self) -> list[EntryKey]:
        return list(self._held)

    def _adoptable(self, t: torch.Tensor) -> bool:
        """A tensor on this pool's device that owns exactly its storage (not a view of a
        larger buffer, which the pool would keep alive while counting only the view)."""
        return (t.device == self.device and t.is_contiguous() and t.storage_offset() == 0
                and t.untyped_storage().nbytes() == _nbytes(t)
                and (not self._pin or t.is_pinned()))

    def _allocate(self, tensors: dict[str, torch.Tensor]):
        if self._slab is None:
            return {k: torch.empty(t.shape, dtype=t.dtype, device=self.device,
                                   pin_memory=self._pin) for k, t in tensors.items()}, []
        dst, spans = {}, []
        for k, t in tensors.items():
            off = self._slab.alloc(_nbytes(t))
            if off is None:
                self.fallback_allocs += 1
                dst[k] = torch.empty(t.shape, dtype=t.dtype, device=self.device,
                                     pin_memory=self._pin)
            else:
                spans.append((off, _nbytes(t)))
                dst[k] = self._slab.view(off, t)
        return dst, spans

    def _copy(self, dst: dict[str, torch.Tensor], src: dict[str, torch.Tensor]):
        gpu = next((t.device for t in (*dst.values(), *src.values()) if t.is_cuda), None)
        if gpu is None:
            for k, t in src.items():
                dst[k].copy_(t)
            return None
        stream = self._streams.get(gpu)
        if stream is None:
            stream = self._streams[gpu] = torch.cuda.Stream(gpu)
        # The side stream must see the producer's writes before it reads them.
        stream.wait_stream(torch.cuda.current_stream(gpu))
        with torch.cuda.stream(stream):
            for k, t in src.items():
                dst[k].copy_(t, non_blocking=True)
                if t.is_cuda:
                    t.record_stream(stream)  # the source may be freed before the copy runs
            ready = torch.cuda.Event()
            ready.record(stream)
        return ready


class GpuPool(TensorPool):
    def __init__(self, device: str | torch.device, capacity: int, **kw):
        super().__init__("gpu", device, capacity, **kw)


class HostPool(TensorPool):
    def __init__(self, capacity: int, **kw):
        super().__init__("host", "cpu", capacity, **kw)
