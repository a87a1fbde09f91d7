"""The engine: streaming chunked prefill and per-camera KV memory over one model.

Owns: `EngineConfig` and `Engine`, the facade the MemoryActor holds. `submit` queues a
chunk of frames; `step` is schedule -> run -> update: the scheduler picks every camera's
next chunk (and, for a camera with a backlog, up to `camera_window` consecutive ones),
the run encodes all their frames in one vision call, assembles each chunk's bounded
context (system prefix, headers of the last H older groups, dense KV of the previous p
chunks; keys rotated at gather; chunks of the same step copied in per layer by the
runner, model.engine.layout) and prefills all chunks in one padded batch; the update writes each chunk's fine and coarse KV to the store and records its
metadata. `ask` and `standing` sit on the same parts, which the engine hands to
decode.py and standing.py as a `QueryParts` (model.engine.parts) with the camera's records.

Differences from the released code, on purpose: its dense mask lets header tokens attend
to all earlier tokens (unbounded for a stream: ours see their chunk's context), and its
decoder keeps keys rotated at their dense positions (ours rotate contiguously at gather,
DESIGN.md); `positions="original"` reproduces the released prefill positions exactly.

Does not: decide tiers or retention (the store does), parse questions, or map stream
times to wall-clock time beyond keeping each chunk's `wall_origin`.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import numpy as np
import torch

from model.engine import decode, standing
from model.engine.config import EngineConfig
from model.engine.context import (
    Context,
    KVSegment,
    chunk_segment,
    coarse_segment,
    coarsen,
    gather,
    header_segment,
    headers_from_coarse,
)
from model.engine.layout import RowLayout, StepLayout, row_layout, split_same_step
from model.engine.parts import CameraRecords, QueryParts
from model.engine.records import (
    ChunkMeta,
    DecodeResult,
    PrefillContextPlan,
    PrefillItem,
    PrefillPlan,
    PrefillResult,
    plan_prefill_context,
)
from model.engine.relevance import SummaryBank
from model.engine.runner import PrefillArena, Runner
from model.engine.scheduler import CameraMemory, PrefillScheduler
from model.engine.store import ChunkTensorStore, ChunkUnavailable, InMemoryChunkStore

log = logging.getLogger(__name__)
PRUNE_EVERY = 256  # chunks (about 68 min at 1 fps) between checks for retention drops
PAD_TOKENS = 64  # on CUDA a step's new tokens are right-padded to a multiple of this
__all__ = ["Engine", "EngineConfig"]


class Engine:
    def __init__(self, model: torch.nn.Module, cfg: EngineConfig | None = None,
                 store: ChunkTensorStore | None = None) -> None:
        self.model = model
        self.cfg = cfg or EngineConfig()
        self.runner = Runner(model)
        if self.cfg.fused_blocks:
            self.runner.use_blocks(compile=self.runner.device.type == "cuda")
        if self.runner.device.type == "cuda" and hasattr(model, "fuse_vision"):
            model.fuse_vision()  # SigLIP q/k/v as one product: same values, fewer kernels
        self.store: ChunkTensorStore = store if store is not None else InMemoryChunkStore(
            self.runner.device)
        self.prompt = model.prompt
        self.tokenizer = model.tokenizer
        self.slots = int(self.prompt.slots_per_group)
        if self.slots % self.cfg.coarse_ratio:
            raise ValueError(f"coarse_ratio {self.cfg.coarse_ratio} must divide the "
                             f"{self.slots} vision slots per group")
        self.prefix = self._prefill_prefix()
        self.memories: dict[str, CameraMemory] = {}
        # camera -> seq -> (n_groups, header KV of the chunk): a cache of what the coarse
        # form also holds, so that prefill never reads old chunks from the store
        self.headers: dict[str, dict[int, tuple[int, KVSegment]]] = {}
        self.banks: dict[str, SummaryBank] = {}
        # (camera, seq) -> vision features encoded ahead (vision_ahead > 0); bounded by the
        # pending queues: entries of chunks no longer pending are dropped at each encode
        self.features: dict[tuple[str, int], torch.Tensor] = {}
        self._arena = PrefillArena()  # prefill buffers reused across steps
        self.scheduler = PrefillScheduler(self.cfg.prev_chunks, self.cfg.max_headers,
                                          self.cfg.max_batch, self.cfg.max_pending,
                                          self.slots, self.prefix.n_tokens,
                                          self.cfg.camera_window)
        self.counters = {"chunks_prefilled": 0, "steps": 0, "questions": 0, "standing": 0,
                         "context_chunks_missing": 0, "chunks_redensified": 0}
        # seconds of host time per phase of `step` (the GPU runs behind: a phase's work
        # may show in the next phase that waits for it, unless sync_phases)
        self.seconds = {"vision": 0.0, "context": 0.0, "prefill": 0.0, "store": 0.0}
        self.sync_phases = False  # a profile: each phase ends with a GPU synchronise

    @torch.inference_mode()
    def _prefill_prefix(self) -> KVSegment:
        ids = torch.tensor(self.prompt.system_prefix_ids(), device=self.runner.device)
        pos = torch.arange(len(ids), device=self.runner.device)
        out = self.runner.forward(self.runner.embed(ids)[None], pos[None])
        return KVSegment(out.k[:, 0].contiguous(), out.v[:, 0].contiguous(), pos)

    # ---- ingest side -------------------------------------------------------------------
    def submit(self, camera: str, seq: int, frames: np.ndarray | torch.Tensor,
               group_times: list[float] | tuple[float, ...], wall_origin: float) -> None:
        """Queue one chunk (uint8 [4 * n_groups, H, W, 3] RGB, 1..n groups) for prefill."""
        _check_frames(camera, seq, frames, len(group_times))
        mem = self.memories.get(camera)
        if mem is not None and seq <= mem.last_seq:
            raise ValueError(f"seq {seq} of camera {camera!r} is not after the last "
                             f"prefilled seq {mem.last_seq}")
        times = tuple(float(t) for t in group_times)
        self.scheduler.add(PrefillItem(
            camera=camera, seq=int(seq), frames=frames, group_times=times,
            wall_origin=float(wall_origin),
            header_ids=tuple(tuple(self.prompt.header_ids(t)) for t in times)))

    @torch.inference_mode()
    def step(self) -> list[PrefillResult]:
        """Prefill one batch: every camera's next pending chunk, and up to camera_window
        consecutive ones of a camera with a backlog (the scheduler decides)."""
        with self._phase("vision"):
            if self.cfg.vision_ahead and any(
                    (q[0].camera, q[0].seq) not in self.features
                    for q in self.scheduler.pending.values() if q):
                self._encode_ahead()
        plan = self.scheduler.schedule(self.memories)
        if not plan.items:
            return []
        fines, n_ctx = self._run_prefill(plan)
        with self._phase("store"):
            self._store_chunks(plan, fines)
        self.counters["steps"] += 1
        self.counters["chunks_prefilled"] += len(plan.items)
        results = self.scheduler.update(plan, self.memories, n_ctx)
        for r in results:
            if r.seq % PRUNE_EVERY == 0:
                self.prune(r.camera)
        return results

    @contextmanager
    def _phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.sync_phases:
                self.synchronize()
            self.seconds[name] += time.perf_counter() - started

    def synchronize(self) -> None:
        """Wait for the GPU's queued work (nothing on the CPU)."""
        if self.runner.device.type == "cuda":
            torch.cuda.synchronize(self.runner.device)

    def prune(self, camera: str) -> int:
        """Forget records of chunks older than anything the store still holds (dropped by
        retention); run every PRUNE_EVERY chunks so a camera's bookkeeping stays bounded."""
        mem = self.memories.get(camera)
        return 0 if mem is None else CameraRecords(mem, self.summaries(camera)).prune(self.store)

    def run_until_idle(self) -> list[PrefillResult]:
        results = []
        while self.scheduler.n_pending():
            results += self.step()
        return results

    def _encode_items(self, items: list[PrefillItem]) -> list[torch.Tensor]:
        """Vision features [n_groups, slots, hidden] per item: one encoder call per frame
        size (normally one for the whole batch, ingest resizes to 384 x 384)."""
        frames = [f if isinstance(f, torch.Tensor) else torch.from_numpy(np.asarray(f))
                  for f in (it.frames for it in items)]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            by_shape.setdefault(tuple(f.shape[1:]), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(frames)
        for idx in by_shape.values():
            feats = self.model.encode_video(torch.cat([frames[i] for i in idx]))
            feats = feats.to(self.runner.device, self.runner.dtype)
            g0 = 0
            for i in idx:
                n = frames[i].shape[0] // 4
                out[i] = feats[g0:g0 + n]
                g0 += n
        return out

    def _encode_ahead(self) -> None:
        """Encode up to `vision_ahead` pending chunks (the step's own first) in one call."""
        ranked = {(it.camera, it.seq): (i, it.seq, it) for q in self.scheduler.pending.values()
                  for i, it in enumerate(q)}  # every camera's head first, then the next...
        self.features = {k: f for k, f in self.features.items() if k in ranked}
        todo = [r[2] for k, r in sorted(ranked.items(), key=lambda kr: kr[1][:2])
                if k not in self.features][:self.cfg.vision_ahead]
        for it, feats in zip(todo, self._encode_items(todo), strict=True):
            self.features[(it.camera, it.seq)] = feats

    def _encode(self, plan: PrefillPlan) -> list[torch.Tensor]:
        if self.cfg.vision_ahead:
            missing = [it for it in plan.items if (it.camera, it.seq) not in self.features]
            if missing:
                for it, f in zip(missing, self._encode_items(missing), strict=True):
                    self.features[(it.camera, it.seq)] = f
            return [self.features.pop((it.camera, it.seq)) for it in plan.items]
        return self._encode_items(list(plan.items))

    def _chunk_embeddings(self, plan: PrefillPlan) -> list[torch.Tensor]:
        embs = []
        for item, feats in zip(plan.items, self._encode(plan), strict=True):
            ids, vis = [], []
            for h in item.header_ids:
                ids += h
                vis += range(len(ids), len(ids) + self.slots)
                ids += [self.prompt.vision_pad_id] * self.slots
            emb = self.runner.embed(torch.tensor(ids, device=self.runner.device))
            emb[torch.tensor(vis, device=emb.device)] = feats.reshape(-1, emb.shape[1])
            embs.append(emb)
        return embs

    def _run_prefill(self, plan: PrefillPlan
                     ) -> tuple[list[dict[str, torch.Tensor]], list[int]]:
        """Encode, assemble and prefill every chunk of the plan in one batch; returns each
        chunk's fine KV and the number of context tokens it attended to."""
        with self._phase("vision"):  # the step's own chunks not encoded ahead, embedded
            embs = self._chunk_embeddings(plan)
        t = max(e.shape[0] for e in embs)
        if self.runner.device.type == "cuda":  # whole GEMM tiles, few compiled shapes; the
            t = -(-t // PAD_TOKENS) * PAD_TOKENS  # padded tail is never attended to
        with self._phase("context"):
            ctxs, rows = self._step_layout(plan)
            layout = StepLayout.build(rows, t, self.runner.device)
            buf = self._arena.buffer([c.k for c in ctxs], [c.v for c in ctxs],
                                     extra=layout.extra)
        with self._phase("prefill"):
            emb = torch.stack([torch.nn.functional.pad(e, (0, 0, 0, t - e.shape[0]))
                               for e in embs])
            out = self.runner.prefill(emb, layout, buf)
            fines = [{"k": out.k[:, i, :, :e.shape[0]].contiguous(),
                      "v": out.v[:, i, :, :e.shape[0]].contiguous()}
                     for i, e in enumerate(embs)]
        return fines, [row.own_start for row in rows]

    def _step_layout(self, plan: PrefillPlan) -> tuple[list[Context], list[RowLayout]]:
        """Per row: its context from stored chunks (gathered and rotated now) and the
        same-step tokens it sees, which the runner copies in per layer."""
        ctxs, rows = [], []
        for meta, (stored, spans) in zip(plan.metas, split_same_step(plan), strict=True):
            ctx = self.prefill_context(meta.camera, stored, meta)
            ctxs.append(ctx)
            rows.append(row_layout(plan, spans, ctx.n_tokens, meta, self.cfg.positions))
        return ctxs, rows

    def _store_chunks(self, plan: PrefillPlan, fines: list[dict[str, torch.Tensor]]) -> None:
        for meta, fine in zip(plan.metas, fines, strict=True):
            key = (meta.camera, meta.seq)
            meta_s = {**meta.to_meta(), "coarse_ratio": str(self.cfg.coarse_ratio)}
            self.store.put(key, "fine", fine, meta_s)
            coarse = coarsen(meta, fine, self.cfg.coarse_ratio)
            self.store.put(key, "coarse", coarse, meta_s)
            self.summaries(meta.camera).add(meta.seq, coarse["summary"])
            self._cache_headers(meta, header_segment(meta, fine))

    def _cache_headers(self, meta: ChunkMeta, seg: KVSegment) -> None:
        """Keep the headers a prefill can still need: the newest p + 1 chunks (they leave
        the dense window next) and, before them, chunks holding the last H groups."""
        cache = self.headers.setdefault(meta.camera, {})
        cache[meta.seq] = (meta.n_groups, seg)
        p, h = self.cfg.prev_chunks, self.cfg.max_headers
        if p is None or h is None:
            return
        newest = sorted(cache, reverse=True)
        groups = 0
        for i, seq in enumerate(newest):
            if i <= p:
                continue
            if groups >= h:
                del cache[seq]
            groups += cache.get(seq, (0, None))[0]

    def summaries(self, camera: str) -> SummaryBank:
        if camera not in self.banks:
            self.banks[camera] = SummaryBank(camera, self.cfg.summary_capacity)
        return self.banks[camera]

    # ---- context assembly -------------------------------------------------------------
    def _headers(self, meta: ChunkMeta, groups: list[int]) -> KVSegment:
        cached = self.headers.get(meta.camera, {}).get(meta.seq)
        if cached is not None:
            seg = cached[1]
        else:  # after recover: the coarse form keeps headers verbatim
            coarse = self.store.get((meta.camera, meta.seq), "coarse")
            seg = headers_from_coarse(meta, coarse, self.cfg.coarse_ratio)
            self._cache_headers(meta, seg)
        if len(groups) == meta.n_groups:
            return seg
        starts = np.cumsum((0, *meta.header_lens))
        idx = torch.cat([torch.arange(starts[g], starts[g + 1]) for g in groups]).to(seg.k.device)
        return KVSegment(seg.k[:, :, idx], seg.v[:, :, idx], seg.positions[idx])

    def _dense(self, meta: ChunkMeta) -> KVSegment:
        key = (meta.camera, meta.seq)
        try:
            return chunk_segment(meta, self.store.get(key, "fine"))
        except ChunkUnavailable:  # fine dropped or lost: its coarse form still carries it
            return coarse_segment(meta, self.store.get(key, "coarse"), self.cfg.coarse_ratio)

    def context_segments(self, camera: str, plan: PrefillContextPlan) -> list[KVSegment]:
        mem = self.memories[camera]
        segs = [self.prefix]
        by_seq: dict[int, list[int]] = {}
        for seq, g in plan.header_groups:
            by_seq.setdefault(seq, []).append(g)
        parts = [(s, gs) for s, gs in by_seq.items()] + [(s, None) for s in plan.dense_seqs]
        for seq, groups in parts:
            meta = mem.metas[seq]
            try:
                segs.append(self._dense(meta) if groups is None else self._headers(meta, groups))
            except ChunkUnavailable as err:  # lost (corrupt file): its context goes without it,
                # rather than one camera's loss failing every camera's chunk in the step
                self.counters["context_chunks_missing"] += 1
                log.warning("camera %s: context of a new chunk skips %s", camera, err)
        return segs

    def prefill_context(self, camera: str, plan: PrefillContextPlan,
                        meta: ChunkMeta) -> Context:
        self.memories.setdefault(camera, CameraMemory(camera, self.prefix.n_tokens))
        return gather(self.context_segments(camera, plan), self.runner.rope, self.cfg.positions,
                      next_position=meta.offset)

    # ---- questions --------------------------------------------------------------------
    def query_parts(self) -> QueryParts:
        """What decode.py and standing.py run on: the engine's current parts."""
        return QueryParts(runner=self.runner, store=self.store, prefix=self.prefix,
                          prompt=self.prompt, tokenizer=self.tokenizer, cfg=self.cfg,
                          history_window=self.scheduler.history_window(),
                          context_segments=self.context_segments)

    def camera_records(self, camera: str) -> CameraRecords:
        """The camera's chunk records and summary keys (KeyError: no memory of it)."""
        mem = self.memories.get(camera)
        if mem is None:
            raise KeyError(f"camera {camera!r} has no memory in this engine")
        return CameraRecords(mem, self.summaries(camera))

    @torch.inference_mode()
    def ask(self, camera: str, question: str, seq_range: tuple[int, int] | None = None,
            boosts: dict[int, float] | None = None) -> DecodeResult:
        self.counters["questions"] += 1
        decode.check_question(question)  # an empty question is refused before the camera
        return decode.ask(self.query_parts(), self.camera_records(camera), question,
                          seq_range, boosts)

    @torch.inference_mode()  # as ask and step: the summary bank holds inference tensors
    def prepare_question(self, camera: str, question: str,
                         seq_range: tuple[int, int] | None = None,
                         boosts: dict[int, float] | None = None,
                         again: bool = False) -> decode.Prepared:
        """`ask` in two halves: this one reads the store (run it between steps)...
        `again`: the same question planned once more (after `redensify`), not counted."""
        self.counters["questions"] += 0 if again else 1
        decode.check_question(question)
        return decode.prepare(self.query_parts(), self.camera_records(camera), question,
                              seq_range, boosts)

    @torch.inference_mode()  # per thread: the decoding thread needs it too
    def finish_question(self, prepared: decode.Prepared) -> DecodeResult:
        """...and this one decodes, touching neither the store nor the records, so
        prefill steps may run meanwhile (one finish at a time: it replays shared graphs)."""
        return decode.finish(self.query_parts(), prepared)

    @torch.inference_mode()
    def standing(self, camera: str, seq: int, questions: list[str]) -> list[float]:
        self.counters["standing"] += 1
        return standing.yes_probabilities(self.query_parts(), self.memories, camera, seq,
                                          questions)

    @torch.inference_mode()
    def standing_batch(self, requests: list[tuple[str, int, list[str]]]) -> list[list[float]]:
        """Standing questions of several chunks (e.g. every camera's newest) in one batch."""
        self.counters["standing"] += len(requests)
        return standing.yes_probabilities_batch(self.query_parts(), self.memories, requests)

    # ---- lifecycle --------------------------------------------------------------------
    def recover(self, camera: str) -> int:
        """Rebuild a camera's records from the store (after a restart); returns chunk count."""
        mem = CameraMemory(camera, self.prefix.n_tokens)
        for seq in self.store.seqs(camera):
            raw = self.store.meta((camera, seq))
            ratio = raw.get("coarse_ratio", str(self.cfg.coarse_ratio))
            if ratio != str(self.cfg.coarse_ratio):  # the coarse layout depends on r
                raise ValueError(f"chunk {seq} of camera {camera!r} was stored with "
                                 f"coarse_ratio {ratio}, engine has {self.cfg.coarse_ratio}")
            mem.add(ChunkMeta.from_meta(raw))
        self.memories[camera] = mem
        self.headers.pop(camera, None)
        self.banks.pop(camera, None)
        return len(mem.metas)

    def mark_important(self, camera: str, seq: int) -> None:
        """A CV event or alert touched this chunk: ask the store to keep its fine KV."""
        self.store.mark_important((camera, seq))

    @torch.inference_mode()
    def redensify(self, camera: str, seq: int, frames: np.ndarray | torch.Tensor) -> bool:
        """Prefill again a chunk whose fine KV is gone, from its frames (read back from the
        recording): its own offset and times, its context as the memory holds it now (a
        neighbour whose fine KV is gone too is read coarse, so the result is close to, not
        equal to, the first prefill), the fine KV put back into the store (its pools; to
        disk only as the store's policy persists fine KV). Run it between steps. False:
        the chunk still has its fine KV. KeyError: no record of the chunk."""
        mem = self.memories.get(camera)
        meta = None if mem is None else mem.metas.get(seq)
        if meta is None:
            raise KeyError(f"camera {camera!r} has no chunk {seq} in this engine")
        key = (camera, seq)
        if self.store.has(key, "fine"):
            return False
        _check_frames(camera, seq, frames, meta.n_groups)
        item = PrefillItem(camera=camera, seq=seq, frames=frames,
                           group_times=meta.group_times, wall_origin=meta.wall_origin,
                           header_ids=tuple(tuple(self.prompt.header_ids(t))
                                            for t in meta.group_times))
        history = mem.history(before=seq, last=self.scheduler.history_window())
        context = plan_prefill_context(history, self.prefix.n_tokens, self.cfg.prev_chunks,
                                       self.cfg.max_headers)
        fines, _ = self._run_prefill(PrefillPlan(items=(item,), metas=(meta,),
                                                 contexts=(context,)))
        self.store.put(key, "fine", fines[0],
                       {**meta.to_meta(), "coarse_ratio": str(self.cfg.coarse_ratio)})
        self.counters["chunks_redensified"] += 1
        return True

    def drop_camera(self, camera: str) -> None:
        self.scheduler.forget(camera)
        self.memories.pop(camera, None)
        self.headers.pop(camera, None)
        self.banks.pop(camera, None)
        self.features = {k: f for k, f in self.features.items() if k[0] != camera}
        self.store.drop_camera(camera)

    def chunk_spans(self, camera: str) -> list[tuple[int, float, float, float]]:
        """(seq, t_start, t_end, wall_origin) of the camera's chunks in stream order; a
        chunk spans from its first group's time to the next chunk's (the last: one group
        more)."""
        mem = self.memories.get(camera)
        metas = mem.history() if mem else []
        out = []
        for i, m in enumerate(metas):
            step = (m.group_times[-1] - m.group_times[0]) / max(1, m.n_groups - 1) or 4.0
            end = metas[i + 1].t_start if i + 1 < len(metas) else m.group_times[-1] + step
            out.append((m.seq, m.t_start, end, m.wall_origin))
        return out

    def chunk_start(self, camera: str, seq: int) -> tuple[float, float]:
        """(t of the chunk's first group, its wall origin): one lookup, for every step."""
        meta = self.memories[camera].metas[seq]
        return meta.t_start, meta.wall_origin

    def seqs_in_window(self, camera: str, t_start: float, t_end: float,
                       wall: bool = False) -> tuple[int, int] | None:
        """Chunk seq range overlapping [t_start, t_end]: stream seconds, or epoch seconds
        with `wall` (each chunk's own wall origin: stream time may restart)."""
        if t_end < t_start:
            raise ValueError(f"time window end {t_end} is before its start {t_start}")
        hits = [seq for seq, t0, t1, origin in self.chunk_spans(camera)
                if t0 + (origin if wall else 0.0) <= t_end
                and t1 + (origin if wall else 0.0) > t_start]
        return (hits[0], hits[-1]) if hits else None

    def sweep(self) -> int:
        """Retention of the store (expired fine and coarse forms); 0 for a store without
        retention (in memory)."""
        sweep = getattr(self.store, "sweep", None)
        return int(sweep()) if sweep is not None else 0

    def reconcile(self, camera: str, db_seqs: list[int], important: list[int]) -> list[int]:
        """After `recover`: reapply importance from the database and return the seqs the
        database has but the store lost (empty for a store that persists nothing)."""
        reconcile = getattr(self.store, "reconcile", None)
        if reconcile is None:
            return []
        return list(reconcile(camera, db_seqs, important).missing)

    def pending(self, camera: str | None = None) -> int:
        """Chunks submitted and not yet prefilled (of one camera, or of all)."""
        if camera is None:
            return self.scheduler.n_pending()
        return len(self.scheduler.pending.get(camera, ()))

    def has_room(self, camera: str) -> bool:
        """Whether the camera's queue takes a chunk without dropping its oldest."""
        return self.pending(camera) < self.cfg.max_pending

    def wall_origin(self, camera: str) -> float | None:
        """Epoch seconds of stream time 0 for the camera's latest chunk."""
        mem = self.memories.get(camera)
        return mem.metas[mem.last_seq].wall_origin if mem and mem.metas else None

    def stats(self) -> dict[str, object]:
        return {**self.counters, "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "cameras": {
            cam: {"chunks": len(m.metas), "last_seq": m.last_seq,
                  "pending": len(self.scheduler.pending.get(cam, ())),
                  "dropped": self.scheduler.dropped.get(cam, 0)}
            for cam, m in self.memories.items()}}


def _check_frames(camera: str, seq: int, frames: np.ndarray | torch.Tensor,
                  n_groups: int) -> None:
    """A chunk's frames: uint8 [4 * n_groups, H, W, 3] RGB with at least one group."""
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[3] != 3 or shape[0] != 4 * n_groups or not shape[0]:
        raise ValueError(f"frames of camera {camera!r} seq {seq} must be "
                         f"[4 * {n_groups}, H, W, 3], got shape {shape}")
    if str(frames.dtype) not in ("uint8", "torch.uint8"):
        raise ValueError(f"frames of camera {camera!r} seq {seq} must be uint8, "
                         f"got dtype {frames.dtype}")
