"""Which chunks the next engine step prefills, and the per-camera bookkeeping it updates.

Owns: `CameraMemory` (one camera's chunk metadata and the next stream offset; records
only, no tensors) and `PrefillScheduler` (bounded per-camera queues of submitted chunks;
`schedule` picks every camera's oldest chunk, oldest first across cameras, then, while
the batch has room, up to `window` consecutive chunks of a camera (a backfill), and plans
each chunk's context, which may hold chunks of the same step (model.engine.layout
resolves that dependency layer by layer); `update` records what the step produced).

Does not: run the model or hold KV (runner, store), or decide tiers and retention.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque

from model.engine.records import (
    ChunkMeta,
    PrefillItem,
    PrefillPlan,
    PrefillResult,
    plan_prefill_context,
)


class CameraMemory:
    """A camera's chunk records in seq order (what exists, its layout and times)."""

    def __init__(self, camera: str, prefix_len: int) -> None:
        self.camera = camera
        self.metas: dict[int, ChunkMeta] = {}
        self.order: list[int] = []  # seqs ascending (appends only, so bisect works)
        self.next_offset = prefix_len
        self.last_seq = -1

    def add(self, meta: ChunkMeta) -> None:
        if meta.seq <= self.last_seq:
            raise ValueError(f"seq {meta.seq} of camera {self.camera!r} is not after "
                             f"{self.last_seq}")
        self.metas[meta.seq] = meta
        self.order.append(meta.seq)
        self.last_seq = meta.seq
        self.next_offset = meta.offset + meta.n_tokens

    def history(self, before: int | None = None, last: int | None = None) -> list[ChunkMeta]:
        """Metas with seq < before (default all), ascending, at most the `last` newest."""
        end = len(self.order) if before is None else bisect_left(self.order, before)
        start = 0 if last is None else max(0, end - last)
        return [self.metas[s] for s in self.order[start:end]]

    def forget_before(self, seq: int) -> int:
        """Drop records older than `seq` (their KV was dropped by retention); returns count."""
        cut = bisect_left(self.order, seq)
        for s in self.order[:cut]:
            del self.metas[s]
        del self.order[:cut]
        return cut


class PrefillScheduler:
    """Bounded queues of submitted chunks; plans one step at a time."""

    def __init__(self, prev_chunks: int | None, max_headers: int | None, max_batch: int,
                 max_pending: int, slots: int, prefix_len: int, window: int = 1) -> None:
        self.prev_chunks = prev_chunks
        self.window = window
        self.max_headers = max_headers
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.slots = slots
        self.prefix_len = prefix_len
        self.pending: dict[str, deque[PrefillItem]] = {}
        self.dropped: dict[str, int] = {}

    def add(self, item: PrefillItem) -> None:
        """Queue a chunk; a full queue drops its oldest chunk and counts it (never blocks)."""
        q = self.pending.setdefault(item.camera, deque())
        if q and item.seq <= q[-1].seq:
            raise ValueError(f"seq {item.seq} of camera {item.camera!r} is not after the "
                             f"pending seq {q[-1].seq}")
        if len(q) >= self.max_pending:
            q.popleft()
            self.dropped[item.camera] = self.dropped.get(item.camera, 0) + 1
        q.append(item)

    def n_pending(self) -> int:
        return sum(len(q) for q in self.pending.values())

    def history_window(self) -> int | None:
        """How many past chunks can matter to a prefill (each chunk has >= 1 group)."""
        if self.prev_chunks is None or self.max_headers is None:
            return None
        return self.prev_chunks + self.max_headers

    def schedule(self, memories: dict[str, CameraMemory]) -> PrefillPlan:
        heads = sorted((q[0].seq, cam) for cam, q in self.pending.items() if q)
        take = {cam: 1 for _seq, cam in heads[: self.max_batch]}
        room = self.max_batch - len(take)
        for cam in take:  # backfills: more consecutive chunks, oldest camera first
            more = min(self.window - 1, len(self.pending[cam]) - 1, room)
            take[cam] += more
            room -= more
        items, metas, contexts = [], [], []
        for cam, n in take.items():
            mem = memories.setdefault(cam, CameraMemory(cam, self.prefix_len))
            history = mem.history(last=self.history_window())
            offset = mem.next_offset
            for _ in range(n):
                item = self.pending[cam].popleft()
                meta = ChunkMeta(camera=cam, seq=item.seq, group_times=item.group_times,
                                 header_lens=tuple(len(h) for h in item.header_ids),
                                 slots=self.slots, wall_origin=item.wall_origin, offset=offset)
                items.append(item)
                metas.append(meta)
                contexts.append(plan_prefill_context(history, self.prefix_len,
                                                     self.prev_chunks, self.max_headers))
                history = history + [meta]  # the next chunk of this step sees this one
                offset += meta.n_tokens
        return PrefillPlan(items=tuple(items), metas=tuple(metas), contexts=tuple(contexts))

    def update(self, plan: PrefillPlan, memories: dict[str, CameraMemory],
               context_tokens: list[int]) -> list[PrefillResult]:
        """Record the prefilled chunks; `context_tokens` is what each really attended to
        (less than planned where a window chunk was only available coarse)."""
        results = []
        for meta, n_ctx in zip(plan.metas, context_tokens, strict=True):
            memories[meta.camera].add(meta)
            results.append(PrefillResult(camera=meta.camera, seq=meta.seq,
                                         n_tokens=meta.n_tokens, context_tokens=n_ctx))
        return results

    def forget(self, camera: str) -> None:
        self.pending.pop(camera, None)
        self.dropped.pop(camera, None)
