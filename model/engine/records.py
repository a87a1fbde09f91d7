"""Typed bookkeeping of the engine: chunk metadata, context plans, step plans and results.

Owns: `ChunkMeta` (a chunk's token layout, times and original offset, JSON-able through
`to_meta`/`from_meta` so a store can persist it), the pure context planners (which
headers and which dense chunks a prefill sees), and the frozen plans and results that
cross the engine's schedule -> run -> update boundary and its public API.

Does not: hold or touch tensors (no torch import), so the planning rules are tested
in milliseconds and a KV index can reason about chunks without a GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Granularity = Literal["dense", "coarse"]


@dataclass(frozen=True)
class ChunkMeta:
    """Layout of one chunk: per group, `Time {t:.1f}s:` header tokens then `slots` vision slots."""

    camera: str
    seq: int
    group_times: tuple[float, ...]
    header_lens: tuple[int, ...]
    slots: int  # vision slots per group (144 for Video-XL-2)
    wall_origin: float
    offset: int  # position of the chunk's first token in the dense (uncut) stream layout

    def __post_init__(self) -> None:
        if len(self.group_times) != len(self.header_lens) or not self.group_times:
            raise ValueError(f"group_times {self.group_times!r} and header_lens "
                             f"{self.header_lens!r} must be non-empty and of equal length")

    @property
    def n_groups(self) -> int:
        return len(self.group_times)

    @property
    def n_tokens(self) -> int:
        return sum(self.header_lens) + self.slots * self.n_groups

    def header_spans(self) -> list[tuple[int, int]]:
        """(start, end) of each group's header in the fine token layout."""
        spans, pos = [], 0
        for h in self.header_lens:
            spans.append((pos, pos + h))
            pos += h + self.slots
        return spans

    def vision_spans(self) -> list[tuple[int, int]]:
        return [(e, e + self.slots) for _s, e in self.header_spans()]

    def n_coarse_tokens(self, ratio: int) -> int:
        return sum(self.header_lens) + (self.slots // ratio) * self.n_groups

    @property
    def t_start(self) -> float:
        return self.group_times[0]

    def to_meta(self) -> dict[str, str]:
        return {"chunk_meta": json.dumps({
            "camera": self.camera, "seq": self.seq, "group_times": list(self.group_times),
            "header_lens": list(self.header_lens), "slots": self.slots,
            "wall_origin": self.wall_origin, "offset": self.offset})}

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> ChunkMeta:
        d = json.loads(meta["chunk_meta"])
        return cls(camera=d["camera"], seq=int(d["seq"]),
                   group_times=tuple(float(t) for t in d["group_times"]),
                   header_lens=tuple(int(h) for h in d["header_lens"]), slots=int(d["slots"]),
                   wall_origin=float(d["wall_origin"]), offset=int(d["offset"]))


@dataclass(frozen=True)
class PrefillContextPlan:
    """What one chunk's prefill sees besides the prefix: old headers, then dense chunks."""

    header_groups: tuple[tuple[int, int], ...]  # (seq, group index), temporal order
    dense_seqs: tuple[int, ...]  # ascending
    n_tokens: int  # prefix + headers + dense chunks (the new chunk excluded)


def plan_prefill_context(history: list[ChunkMeta], prefix_len: int, prev_chunks: int | None,
                         max_headers: int | None) -> PrefillContextPlan:
    """Context of the chunk after `history` (ascending, earlier chunks of the same camera).

    The last `prev_chunks` chunks are dense; of the groups before them the headers of the
    last `max_headers` are kept. None means unbounded (the released mask sees them all).
    """
    n_dense = len(history) if prev_chunks is None else min(prev_chunks, len(history))
    cut = len(history) - n_dense
    dense = history[cut:]
    groups = [(m, g) for m in history[:cut] for g in range(m.n_groups)]
    if max_headers is not None:
        groups = groups[max(0, len(groups) - max_headers):]
    n = prefix_len + sum(m.header_lens[g] for m, g in groups) + sum(m.n_tokens for m in dense)
    return PrefillContextPlan(header_groups=tuple((m.seq, g) for m, g in groups),
                              dense_seqs=tuple(m.seq for m in dense), n_tokens=n)


@dataclass(frozen=True, eq=False)
class PrefillItem:
    """One submitted chunk waiting for prefill."""

    camera: str
    seq: int
    frames: np.ndarray  # uint8 [4 * n_groups, H, W, 3] RGB
    group_times: tuple[float, ...]
    wall_origin: float
    header_ids: tuple[tuple[int, ...], ...]  # `Time {t:.1f}s:` tokens per group


@dataclass(frozen=True, eq=False)
class PrefillPlan:
    """One engine step: chunks (a camera's consecutive ones in order), each with its
    context plan, which may name earlier chunks of the same step."""

    items: tuple[PrefillItem, ...]
    metas: tuple[ChunkMeta, ...]
    contexts: tuple[PrefillContextPlan, ...]


@dataclass(frozen=True)
class PrefillResult:
    camera: str
    seq: int
    n_tokens: int  # tokens of the chunk itself
    context_tokens: int  # tokens it attended to before itself


@dataclass(frozen=True)
class DecodePlan:
    """Bi-granularity selection for one question, in temporal order."""

    camera: str
    chunks: tuple[tuple[int, Granularity], ...]
    scores: dict[int, float]
    dropped: tuple[int, ...]  # dropped to fit the token budget
    n_tokens: int  # tokens of the chosen chunks (prefix and question excluded)
    # top-k chunks that would be dense had their fine KV been kept (they went coarse):
    # what the memory can prefill again from the recording (pipeline.memory.redense)
    wanted_dense: tuple[int, ...] = ()


@dataclass(frozen=True)
class DecodeResult:
    text: str
    intervals: list[tuple[float, float]]
    chunks_used: list[tuple[int, Granularity]]
    scores: dict[int, float]
    token_ids: list[int] = field(default_factory=list)
