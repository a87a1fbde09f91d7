"""Context assembly: stored pre-RoPE KV segments -> one rotated context per forward.

Owns: `KVSegment` (K/V of some tokens of some chunk, [L, Hkv, T, D], with their original
stream positions), the slicing of a chunk's fine KV into its headers, its coarse form
(headers verbatim, visual tokens average-pooled by r per group) and its summary key, and
`gather`, which concatenates segments and rotates the keys (model.layers' `Rope`) with
contiguous positions 0..n-1 (or, for the released-mask reproduction, the segments'
original positions).

Does not: define RoPE (model.layers), decide which segments a forward sees
(records.plan_prefill_context, decode.select_chunks) nor run any layer (runner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from model.engine.records import ChunkMeta
from model.layers import Rope

PositionMode = Literal["contiguous", "original"]


@dataclass(frozen=True, eq=False)
class KVSegment:
    k: torch.Tensor  # [L, Hkv, T, D] pre-RoPE
    v: torch.Tensor  # [L, Hkv, T, D]
    positions: torch.Tensor  # [T] original stream positions (long)

    @property
    def n_tokens(self) -> int:
        return self.k.shape[2]


@dataclass(frozen=True, eq=False)
class Context:
    """An assembled context: rotated keys, values, and the next free position."""

    k: torch.Tensor  # [L, Hkv, T, D] rotated
    v: torch.Tensor  # [L, Hkv, T, D]
    next_position: int

    @property
    def n_tokens(self) -> int:
        return self.k.shape[2]


def gather(segments: list[KVSegment], rope: Rope, mode: PositionMode = "contiguous",
           next_position: int | None = None) -> Context:
    """Concatenate segments in order and rotate their keys (RoPE at gather)."""
    k = torch.cat([s.k for s in segments], dim=2)
    v = torch.cat([s.v for s in segments], dim=2)
    if mode == "contiguous":
        positions = torch.arange(k.shape[2], device=k.device)
        nxt = k.shape[2]
    else:
        positions = torch.cat([s.positions for s in segments]).to(k.device)
        nxt = int(positions.max()) + 1 if next_position is None else next_position
    return Context(k=rope.rotate(k, positions), v=v, next_position=nxt)


def token_index(spans: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    return torch.cat([torch.arange(s, e, device=device) for s, e in spans])


def chunk_segment(meta: ChunkMeta, fine: dict[str, torch.Tensor]) -> KVSegment:
    pos = torch.arange(meta.offset, meta.offset + meta.n_tokens, device=fine["k"].device)
    return KVSegment(fine["k"], fine["v"], pos)


def header_segment(meta: ChunkMeta, fine: dict[str, torch.Tensor],
                   groups: list[int] | None = None) -> KVSegment:
    """The headers of `groups` (default all) of a chunk, cut from its fine KV."""
    spans = meta.header_spans()
    spans = spans if groups is None else [spans[g] for g in groups]
    idx = token_index(spans, fine["k"].device)
    return KVSegment(fine["k"][:, :, idx], fine["v"][:, :, idx], idx + meta.offset)


def coarsen(meta: ChunkMeta, fine: dict[str, torch.Tensor], ratio: int) -> dict[str, torch.Tensor]:
    """Coarse form: per group, header verbatim then the visual K/V mean-pooled by `ratio`."""
    if meta.slots % ratio:
        raise ValueError(f"coarse_ratio {ratio} must divide the {meta.slots} slots per group")
    ks, vs = [], []
    for (hs, he), (vs_, ve) in zip(meta.header_spans(), meta.vision_spans(), strict=True):
        for src, out in ((fine["k"], ks), (fine["v"], vs)):
            vis = src[:, :, vs_:ve]  # [L, Hkv, slots, D]
            pooled = vis.unflatten(2, (meta.slots // ratio, ratio)).mean(dim=3)
            out.extend((src[:, :, hs:he], pooled))
    vis_idx = token_index(meta.vision_spans(), fine["k"].device)
    summary = fine["k"][:, :, vis_idx].float().mean(dim=2).to(fine["k"].dtype)  # [L, Hkv, D]
    return {"k": torch.cat(ks, dim=2), "v": torch.cat(vs, dim=2), "summary": summary}


def coarse_header_spans(meta: ChunkMeta, ratio: int) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for h in meta.header_lens:
        spans.append((pos, pos + h))
        pos += h + meta.slots // ratio
    return spans


def coarse_segment(meta: ChunkMeta, coarse: dict[str, torch.Tensor], ratio: int) -> KVSegment:
    """Coarse KV as a segment; a pooled token's original position is its window's first."""
    pos = []
    for (hs, he), (vs_, _ve) in zip(meta.header_spans(), meta.vision_spans(), strict=True):
        pos.append(torch.arange(hs, he))
        pos.append(torch.arange(vs_, vs_ + meta.slots, ratio))
    positions = (torch.cat(pos) + meta.offset).to(coarse["k"].device)
    return KVSegment(coarse["k"], coarse["v"], positions)


def headers_from_coarse(meta: ChunkMeta, coarse: dict[str, torch.Tensor], ratio: int,
                        groups: list[int] | None = None) -> KVSegment:
    """Headers of a chunk cut from its coarse form (kept verbatim there): used by recover."""
    spans = coarse_header_spans(meta, ratio)
    spans = spans if groups is None else [spans[g] for g in groups]
    idx = token_index(spans, coarse["k"].device)
    fine_idx = token_index(meta.header_spans() if groups is None
                           else [meta.header_spans()[g] for g in groups], coarse["k"].device)
    return KVSegment(coarse["k"][:, :, idx], coarse["v"][:, :, idx], fine_idx + meta.offset)
