"""The coarse form on disk: visual tokens pooled further (r = 4 in memory, r = 16 on disk).

A chunk's coarse KV (per group: the header verbatim, then the visual K/V mean-pooled by the
engine's `coarse_ratio`) is what questions over hours read. The GPU and host pools keep it
at that ratio for the recent window; on disk it is pooled again by `disk_ratio /
coarse_ratio`, and read back by repeating each pooled token over the slots it covers, so
the engine always sees one layout. Each repeated token keeps its own position (keys are
stored before RoPE), and a mean of means over equal windows is the mean over the larger
window: the disk form is exactly what coarsening the fine KV at `disk_ratio` would give.

This is a `model.kv.codec.DiskCodec`; it lives here because the layout is the engine's.
"""

from __future__ import annotations

import torch

from model.engine.records import ChunkMeta

COARSE = "coarse"
RATIO_KEY = "disk_coarse_ratio"


class CoarseRepool:
    name = "repool"

    def __init__(self, coarse_ratio: int, disk_ratio: int) -> None:
        if disk_ratio < coarse_ratio or disk_ratio % coarse_ratio:
            raise ValueError(f"memory.disk_coarse_ratio ({disk_ratio}) must be a multiple of "
                             f"engine.coarse_ratio ({coarse_ratio})")
        self.coarse_ratio, self.disk_ratio = coarse_ratio, disk_ratio

    def encode(self, form: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]):
        if form != COARSE or self.disk_ratio == self.coarse_ratio or "chunk_meta" not in meta:
            return tensors, {}
        cm = ChunkMeta.from_meta(meta)
        if cm.slots % self.disk_ratio:
            return tensors, {}  # the slots do not split into windows of disk_ratio
        f = self.disk_ratio // self.coarse_ratio
        out = dict(tensors)
        for key in ("k", "v"):
            parts = []
            for header, vis in _groups(tensors[key], cm, self.coarse_ratio):
                pooled = vis.float().unflatten(2, (vis.shape[2] // f, f)).mean(dim=3)
                parts.extend((header, pooled.to(vis.dtype)))  # [L, Hkv, slots/disk_r, D]
            out[key] = torch.cat(parts, dim=2)
        return out, {RATIO_KEY: str(self.disk_ratio)}

    def decode(self, form: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]):
        disk_ratio = int(meta[RATIO_KEY])
        memory_ratio = int(meta.get("coarse_ratio", self.coarse_ratio))
        cm = ChunkMeta.from_meta(meta)
        f = disk_ratio // memory_ratio
        out = dict(tensors)
        for key in ("k", "v"):
            parts = []
            for header, vis in _groups(tensors[key], cm, disk_ratio):
                parts.extend((header, vis.repeat_interleave(f, dim=2)))
            out[key] = torch.cat(parts, dim=2)
        return out


def _groups(t: torch.Tensor, cm: ChunkMeta, ratio: int):
    """Per group of a coarse tensor [L, Hkv, T, D]: (header, pooled visual tokens)."""
    pos, n_vis = 0, cm.slots // ratio
    for h in cm.header_lens:
        yield t[:, :, pos:pos + h], t[:, :, pos + h:pos + h + n_vis]
        pos += h + n_vis
    if pos != t.shape[2]:
        raise ValueError(f"coarse KV of {cm.camera} #{cm.seq} has {t.shape[2]} tokens; its "
                         f"layout at r={ratio} has {pos}")
