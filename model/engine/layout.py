"""Where each row of a prefill step reads and writes its keys: the step's layout.

A step prefills rows (chunks). A row's context is a static part, assembled and rotated
before the step from stored chunks (model.engine.context.gather), then possibly a part
made of chunks of the same camera prefilled in this very step (a backfill prefills
several consecutive chunks of one camera at once), then the row's own tokens. The
same-step part cannot be gathered beforehand: its K/V exist only layer by layer. So at
every layer the runner copies those tokens' fresh pre-RoPE keys and values into each row
that sees them, rotated at that row's context positions, next to the row's own tokens.
Chunk i at layer l needs chunk i-1's K/V at layer l only, which exist once layer l's
projections ran: the dependency is resolved inside one forward, and the step's matrix
products see every row's tokens at once instead of one chunk at a time.

Owns: `Span` and `RowLayout` (one row: its static length, the spans of same-step tokens
it sees in context order, its own token count and first position) and `StepLayout.build`, which turns the rows
into the index tensors the runner uses at every layer (copy sources, destinations and
their rotation; the boolean mask of the reference path; the packing of the variable-
length attention path). Everything here is layer-invariant: built once per step.

`split_same_step` and `row_layout` turn a step's plan into rows.

Does not: plan which chunks a row sees (records.plan_prefill_context), gather stored
context (the engine) or run layers (the runner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from model.engine.records import ChunkMeta, PrefillContextPlan, PrefillPlan
from model.layers import Rope


@dataclass(frozen=True)
class Span:
    """Tokens [start, end) of step row `row`, seen by another row at rotary positions
    position, position + 1, ..."""

    row: int
    start: int
    end: int
    position: int

    @property
    def n(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class RowLayout:
    static: int  # context tokens already in the buffer row, rotated, at slots [0, static)
    refs: tuple[Span, ...]  # same-step tokens this row sees, in context order
    n_own: int  # this row's own (real) new tokens
    own_position: int  # rotary position of its first own token (the rest follow)

    @property
    def n_refs(self) -> int:
        return sum(s.n for s in self.refs)

    @property
    def own_start(self) -> int:
        return self.static + self.n_refs

    @property
    def length(self) -> int:
        return self.own_start + self.n_own


def split_same_step(plan: PrefillPlan
                    ) -> list[tuple[PrefillContextPlan, list[tuple[int, int, int]]]]:
    """Per row of a step: its context plan cut to stored chunks (gathered beforehand), and
    the (row, start, end) token spans of same-step chunks it sees, in context order
    (earlier chunks of its camera in this step: dense ones whole, older ones by their
    headers). Stored parts precede same-step parts in each of the header and dense
    sections, and same-step headers exist only when no stored chunk is dense, so the
    stored context followed by the spans is the planned context in order."""
    row_of = {(m.camera, m.seq): r for r, m in enumerate(plan.metas)}
    out = []
    for meta, cplan in zip(plan.metas, plan.contexts, strict=True):
        cam = meta.camera
        stored = PrefillContextPlan(
            header_groups=tuple(hg for hg in cplan.header_groups if (cam, hg[0]) not in row_of),
            dense_seqs=tuple(s for s in cplan.dense_seqs if (cam, s) not in row_of),
            n_tokens=0)  # not used: the gathered context says how long it is
        spans = [(row_of[(cam, seq)], *plan.metas[row_of[(cam, seq)]].header_spans()[g])
                 for seq, g in cplan.header_groups if (cam, seq) in row_of]
        spans += [(row_of[(cam, seq)], 0, plan.metas[row_of[(cam, seq)]].n_tokens)
                  for seq in cplan.dense_seqs if (cam, seq) in row_of]
        out.append((stored, spans))
    return out


def row_layout(plan: PrefillPlan, spans: list[tuple[int, int, int]], static: int,
               meta: ChunkMeta, positions: str) -> RowLayout:
    """A row's layout: contiguous positions continue after its static context; "original"
    (the released layout) puts every token at its stream position."""
    refs, pos = [], static
    for r, a, b in spans:
        if positions == "original":
            pos = plan.metas[r].offset + a
        refs.append(Span(r, a, b, pos))
        pos += b - a
    own = meta.offset if positions == "original" else pos
    return RowLayout(static=static, refs=tuple(refs), n_own=meta.n_tokens, own_position=own)


@dataclass(eq=False)
class StepLayout:
    rows: tuple[RowLayout, ...]
    t: int  # new tokens per row in the step's padded batch (>= every n_own)
    src: torch.Tensor  # [N] flat index into the step's new tokens [B * t]
    dst_row: torch.Tensor  # [N] buffer row of each copy
    dst_slot: torch.Tensor  # [N] buffer slot of each copy
    positions: torch.Tensor  # [B, t] rotary position of each new token (queries)
    copy_positions: torch.Tensor  # [N] rotary position of each copy (keys)
    _cache: dict = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[RowLayout], t: int, device: torch.device) -> StepLayout:
        """Copies: every row's same-step refs, then its own tokens (so own keys land in the
        buffer rotated like any context token). Padded own slots stay where they are."""
        src, dst_row, dst_slot, cpos = [], [], [], []
        for r, row in enumerate(rows):
            if row.n_own > t:
                raise ValueError(f"row {r} has {row.n_own} new tokens, more than t={t}")
            own = Span(r, 0, row.n_own, row.own_position)
            slot = row.static
            for s in (*row.refs, own):
                if not 0 <= s.row < len(rows) or not 0 <= s.start <= s.end <= rows[s.row].n_own:
                    raise ValueError(f"row {r} refers to tokens [{s.start}, {s.end}) of row "
                                     f"{s.row}, which the step does not hold")
                src.append(s.row * t + np.arange(s.start, s.end))
                dst_row.append(np.full(s.n, r))
                dst_slot.append(np.arange(slot, slot + s.n))
                cpos.append(np.arange(s.position, s.position + s.n))
                slot += s.n
        # the padded tail of a row continues its positions (never attended to)
        positions = np.array([r.own_position for r in rows])[:, None] + np.arange(t)[None]

        def long(parts):
            return torch.from_numpy(np.concatenate(parts).astype(np.int64)).to(device)

        return cls(rows=tuple(rows), t=t, src=long(src), dst_row=long(dst_row),
                   dst_slot=long(dst_slot), positions=long([positions]).view(len(rows), t),
                   copy_positions=long(cpos))

    @property
    def extra(self) -> int:
        """Slots each row needs past its static part."""
        return max(r.n_refs for r in self.rows) + self.t

    @property
    def same_start(self) -> bool:
        """No same-step refs and one static length: every row's own tokens start at one
        slot (live cameras at the same age), so attention needs no packing."""
        return all(not r.refs and r.static == self.rows[0].static for r in self.rows)

    def copy_rotation(self, rope: Rope, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """cos, sin [N, 1, D] of the copies (each key rotated at its context position)."""
        key = ("rot", dtype)
        if key not in self._cache:
            cos, sin = rope.cos_sin(self.copy_positions, dtype)
            self._cache[key] = (cos[:, None], sin[:, None])
        return self._cache[key]

    def mask(self, capacity: int, device: torch.device) -> torch.Tensor:
        """[B, 1, t, capacity] bool: query j of row r sees slots up to own_start + j."""
        key = ("mask", capacity)
        if key not in self._cache:
            start = torch.tensor([r.own_start for r in self.rows], device=device)
            last = start[:, None] + torch.arange(self.t, device=device)[None]  # [B, t]
            slots = torch.arange(capacity, device=device)
            self._cache[key] = (slots[None, None, :] <= last[:, :, None])[:, None]
        return self._cache[key]

    def packing(self, device: torch.device) -> dict[str, object]:
        """Indices of the variable-length path: real queries and each row's valid slots
        packed back to back, with cumulative lengths (int32, as flash attention takes)."""
        if "pack" not in self._cache:
            n_q = np.array([r.n_own for r in self.rows])
            n_k = np.array([r.length for r in self.rows])
            cu_q, cu_k = np.concatenate([[0], n_q.cumsum()]), np.concatenate([[0], n_k.cumsum()])
            rows = np.arange(len(self.rows))

            def flat(n, cu):  # row of each packed element, and its index within the row
                row = np.repeat(rows, n)
                return row, np.arange(cu[-1]) - cu[:-1][row]

            q_row, q_tok = flat(n_q, cu_q)
            k_row, k_slot = flat(n_k, cu_k)

            def t(x, dtype=torch.long):
                return torch.from_numpy(np.asarray(x)).to(device=device, dtype=dtype)

            self._cache["pack"] = {
                "q_row": t(q_row), "q_tok": t(q_tok), "k_row": t(k_row), "k_slot": t(k_slot),
                "cu_q": t(cu_q, torch.int32), "cu_k": t(cu_k, torch.int32),
                "max_q": int(n_q.max()), "max_k": int(n_k.max())}
        return self._cache["pack"]
