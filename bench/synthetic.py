"""Stores for the question and live benchmarks: long memories without hours of prefill.

Owns:
- `AliasStore`: a `ChunkTensorStore` that presents one camera with N chunks (1 h = 225,
  24 h = 5,400 at 1 fps) whose tensors alias a few really prefilled chunks (chunk s
  reuses the tensors of source chunk s % n_src). Layout, times and offsets are those of a
  real N-chunk stream; only the values repeat. Question latency depends on the shapes and
  the number of chunks, not on the values, so it is measured exactly; answers are not
  meaningful (random weights anyway). `fine=False` presents coarse KV only (the tier a
  day-old memory lives in).
- `WindowStore`: an in-memory store for many live cameras on one GPU: the fine KV of the
  newest `keep_fine` chunks per camera stays on the GPU (what the next prefill reads),
  older fine KV is dropped and coarse KV goes to host memory, as the tiered store's
  policy would place them.

Does not: persist anything or decide retention for the product (model/kv does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch

from model.engine.records import ChunkMeta
from model.engine.store import ChunkUnavailable, InMemoryChunkStore


class AliasStore:
    def __init__(self, src: InMemoryChunkStore, src_camera: str, camera: str, n_chunks: int,
                 fine: bool = True) -> None:
        self.src, self.camera, self.n, self.fine = src, camera, n_chunks, fine
        self.src_seqs = src.seqs(src_camera)
        self.src_camera = src_camera
        metas = [ChunkMeta.from_meta(src.meta((src_camera, s))) for s in self.src_seqs]
        self.metas: list[dict[str, str]] = []
        offset = metas[0].offset
        span = 16.0
        for s in range(n_chunks):
            m = metas[s % len(metas)]
            times = tuple(s * span + (t - m.group_times[0]) for t in m.group_times)
            meta = dataclasses.replace(m, camera=camera, seq=s, group_times=times, offset=offset)
            offset += meta.n_tokens
            extra = src.meta((src_camera, self.src_seqs[s % len(metas)]))
            self.metas.append({**extra, **meta.to_meta()})

    def _src_key(self, key):
        cam, seq = key
        if cam != self.camera or not 0 <= seq < self.n:
            raise ChunkUnavailable(key, "any", "not stored")
        return (self.src_camera, self.src_seqs[seq % len(self.src_seqs)])

    def get(self, key, form):
        if form == "fine" and not self.fine:
            raise ChunkUnavailable(key, form, "fine dropped (coarse-only memory)")
        return self.src.get(self._src_key(key), form)

    def has(self, key, form) -> bool:
        return key[0] == self.camera and 0 <= key[1] < self.n and (form == "coarse" or self.fine)

    def meta(self, key) -> dict[str, str]:
        self._src_key(key)
        return self.metas[key[1]]

    def seqs(self, camera: str) -> list[int]:
        return list(range(self.n)) if camera == self.camera else []

    def put(self, key, form, tensors, meta) -> None:
        raise NotImplementedError("AliasStore is read-only")

    def pin(self, keys: Iterable) -> None:
        pass

    def unpin(self, keys: Iterable) -> None:
        pass

    def mark_important(self, key) -> None:
        pass

    def drop_camera(self, camera: str) -> None:
        pass


class WindowStore(InMemoryChunkStore):
    def __init__(self, device: torch.device, keep_fine: int = 4, coarse_device: str = "cpu"):
        super().__init__(device)
        self.keep_fine = keep_fine
        self.coarse_device = torch.device(coarse_device)

    def put(self, key, form, tensors, meta) -> None:
        if form == "coarse":
            self._tensors[(key, form)] = {n: t.to(self.coarse_device) for n, t in tensors.items()}
            self._meta[key] = {**self._meta.get(key, {}), **meta}
            return
        super().put(key, form, tensors, meta)
        self._tensors.pop(((key[0], key[1] - self.keep_fine), "fine"), None)

    def get(self, key, form):
        out = super().get(key, form)
        return {n: t.to(self.device, non_blocking=True) for n, t in out.items()}
