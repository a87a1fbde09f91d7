"""MemoryCore: the memories of the cameras placed on one device slot, and their steps.

A mailbox per camera takes chunks from any thread (`submit` never waits for the GPU);
`step()` moves what arrived into the engine, runs one engine step over everything pending
(every camera's next chunk, or a backfill of up to `camera_window` chunks of one camera),
marks the chunks the CV analysis found important, and scores the standing questions of
that step's chunks in one batch. `ask` answers over a wall-clock window. The engine is
injected (a factory, called when the first video-LLM camera arrives), so tests build the
core with a tiny model and no Ray. Not thread-safe apart from `submit`, `backlog` and
`idle`: `pipeline.memory.loop.StepLoop` serialises the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pipeline.evidence import thumbnail_relpath
from pipeline.memory.cv import CVMemory
from pipeline.memory.redense import ChunkTimes, RecordedChunks
from pipeline.messages import ChunkScores, MemoryAnswer, ModelChunk

log = logging.getLogger(__name__)
Standing = Callable[[str], list[tuple[str, str]]]  # camera -> [(rule name, question)]
NO_FOOTAGE = "No footage of this camera is stored for that time window."
REDENSE = "redense"  # chunks_used granularity: dense again, prefilled from the recording


@dataclass(frozen=True)
class PendingAnswer:
    """A question whose memory half ran (`prepare_ask`): what `finish_ask` decodes."""

    camera: str
    text: str
    seq_range: tuple[int, int] | None
    boosts: dict[int, float] | None
    question: Any  # model.engine.decode.Prepared
    spans: list[tuple[int, float, float, float]]
    wall_origin: float | None
    # top-k chunks it wanted dense whose fine KV is gone (at most redense_max of them)
    wanted: tuple[ChunkTimes, ...] = ()
    redensified: tuple[int, ...] = ()  # of those, prefilled again from the recording


class MemoryCore:
    def __init__(self, db: Any, engine_factory: Callable[[], Any] | None = None,
                 standing: Standing | None = None, recorded: RecordedChunks | None = None,
                 redense_max: int = 0) -> None:
        self._db = db
        self._recorded = recorded if redense_max > 0 else None
        self._redense_max = redense_max
        self._factory = engine_factory
        self.engine: Any = None
        self.cv = CVMemory(db)
        self._standing = standing or (lambda camera: [])
        self._backends: dict[str, str] = {}
        self._mail: dict[str, deque[tuple[ModelChunk, bool]]] = {}  # (chunk, hold)
        self._mail_lock = threading.Lock()
        self._important: set[tuple[str, int]] = set()
        self.counters = {"submitted": 0, "prefilled": 0, "steps": 0, "standing_batches": 0,
                         "refused": 0, "redensified": 0, "redense_failed": 0}
        # totals: the step's mailbox and standing-question phases (the engine has its
        # own), reading back (decode, resize) and prefilling again plus the re-plan
        self.seconds = {"mailbox": 0.0, "standing": 0.0, "redense_read": 0.0,
                        "redense_prefill": 0.0}
        self._sync = False  # phases timed to the GPU (a profile runs)
        self._stats_lock = threading.Lock()

    # ---- cameras ----------------------------------------------------------------------
    def _llm(self) -> Any:
        if self.engine is None:
            if self._factory is None:
                raise ValueError("backend: this memory has no video LLM engine; got "
                                 "'videoxl2'")
            self.engine = self._factory()
        return self.engine

    def add_camera(self, camera: str, backend: str) -> dict:
        """Hold a camera; a video-LLM camera's memory is rebuilt from the store and
        checked against the database's chunk rows."""
        self._backends[camera] = backend
        if backend != "videoxl2":
            return self.cv.add_camera(camera)
        engine = self._llm()
        recovered = engine.recover(camera)
        if self._db is None:  # `analyze`: nothing stored to check against
            return {"camera": camera, "backend": backend, "recovered": recovered, "lost": []}
        from storage import repo  # here: a core without a database imports no SQL

        with self._db.session() as s:
            rows = repo.list_chunks(s, camera) if repo.get_camera(s, camera) else []
        lost = engine.reconcile(camera, [r.seq for r in rows],
                                [r.seq for r in rows if r.important])
        return {"camera": camera, "backend": backend, "recovered": recovered, "lost": lost}

    def drop_camera(self, camera: str, delete: bool = False) -> None:
        """Release a camera; one removed by the operator loses its KV memory too."""
        self._backends.pop(camera, None)
        with self._mail_lock:
            self._mail.pop(camera, None)
        self.cv.drop_camera(camera)
        if self.engine is not None and delete:
            self.engine.drop_camera(camera)

    def cameras(self) -> list[str]:
        return sorted(self._backends)

    # ---- chunks -----------------------------------------------------------------------
    def submit(self, chunk: ModelChunk, hold: bool = False) -> None:
        """Thread-safe; never waits. The engine's per-camera bound drops the oldest
        pending chunk (and counts it) when a camera's backlog outgrows it; a `hold` chunk
        (a file's, whose sender waits for room) stays in the mailbox until the engine's
        queue of its camera has room instead, so a file loses nothing."""
        with self._mail_lock:
            self._mail.setdefault(chunk.camera, deque()).append((chunk, hold))
            self.counters["submitted"] += 1

    def backlog(self, camera: str) -> int:
        """Chunks of `camera` submitted and not yet prefilled."""
        with self._mail_lock:
            return len(self._mail.get(camera, ())) + (
                self.engine.pending(camera) if self.engine is not None else 0)

    def idle(self) -> bool:
        with self._mail_lock:
            return not any(self._mail.values()) and (
                self.engine is None or self.engine.pending() == 0)

    def _drain_mail(self) -> None:
        # Under the mail lock: `idle()` never sees a chunk between mailbox and engine.
        with self._mail_lock:
            mail, self._mail = self._mail, {}
            for camera, chunks in mail.items():
                while chunks:
                    chunk, hold = chunks[0]
                    if hold and self._engine_full(camera):
                        self._mail[camera] = chunks  # in order, for a later step
                        break
                    chunks.popleft()
                    self._enqueue(camera, chunk)

    def _engine_full(self, camera: str) -> bool:
        return (self.engine is not None and self._backends.get(camera) == "videoxl2"
                and not self.engine.has_room(camera))

    def _enqueue(self, camera: str, chunk: ModelChunk) -> None:
        backend = self._backends.get(camera)
        if backend is None:
            self.counters["refused"] += 1  # dropped while in the mailbox
            return
        if backend != "videoxl2":
            self.cv.on_chunk(chunk)
            return
        try:
            self.engine.submit(camera, chunk.seq, chunk.model_frames,
                               list(chunk.group_times), chunk.wall_origin)
        except ValueError as exc:  # a seq at or before what is prefilled: a replay
            self.counters["refused"] += 1
            log.warning("camera %s: chunk %d refused: %s", camera, chunk.seq, exc)
            return
        if chunk.important:
            self._important.add((camera, chunk.seq))

    def step(self) -> list[ChunkScores]:
        """One engine step over everything pending; the standing scores of its chunks."""
        started = time.perf_counter()
        self._drain_mail()
        self.seconds["mailbox"] += time.perf_counter() - started
        if self.engine is None or not self.engine.pending():
            return []
        results = self.engine.step()
        self.counters["steps"] += 1
        self.counters["prefilled"] += len(results)
        for r in results:
            if (r.camera, r.seq) in self._important:
                self._important.discard((r.camera, r.seq))
                self.engine.mark_important(r.camera, r.seq)
        started = time.perf_counter()
        try:
            return self._score(results)
        finally:
            if self._sync:
                self.engine.synchronize()
            self.seconds["standing"] += time.perf_counter() - started

    def _score(self, results: list[Any]) -> list[ChunkScores]:
        asks = [(r, self._standing(r.camera)) for r in results]
        asks = [(r, qs) for r, qs in asks if qs]
        if not asks:
            return []
        probs = self.engine.standing_batch([(r.camera, r.seq, [q for _, q in qs])
                                            for r, qs in asks])
        self.counters["standing_batches"] += 1
        out = []
        for (r, qs), ps in zip(asks, probs, strict=True):
            t0, origin = self.engine.chunk_start(r.camera, r.seq)
            out.append(ChunkScores(
                r.camera, r.seq, t0, origin + t0,
                {name: float(p) for (name, _), p in zip(qs, ps, strict=True)},
                thumbnail_relpath(r.camera, f"chunk-{r.seq:08d}")))
        return out

    # ---- questions and retention ------------------------------------------------------
    def ask(self, camera: str, text: str, wall_range: tuple[float, float] | None,
            boosts: dict[int, float] | None) -> MemoryAnswer:
        """The three halves in one thread (`MemoryActor.ask` runs them around its loop)."""
        pending = self.prepare_ask(camera, text, wall_range, boosts)
        frames = self.recorded_frames(pending)
        if frames:
            pending = self.redense_ask(pending, frames)
        return self.finish_ask(pending)

    def prepare_ask(self, camera: str, text: str, wall_range: tuple[float, float] | None,
                    boosts: dict[int, float] | None) -> MemoryAnswer | PendingAnswer:
        """The half of a question that reads the memory (between steps): a MemoryAnswer
        already (no footage in the window), or what `finish_ask` decodes."""
        if self._backends.get(camera) != "videoxl2" or self.engine is None:
            raise ValueError(f"backend: camera {camera!r} has no video LLM memory here; "
                             f"got 'videoxl2'")
        engine = self.engine
        seq_range = None
        if wall_range is not None:
            seq_range = engine.seqs_in_window(camera, wall_range[0], wall_range[1], wall=True)
            if seq_range is None:
                return MemoryAnswer(NO_FOOTAGE)
        prepared = engine.prepare_question(camera, text, seq_range=seq_range, boosts=boosts)
        wanted: tuple[ChunkTimes, ...] = ()
        if self._recorded is not None and prepared.wanted_dense:
            metas = engine.memories[camera].metas
            wanted = tuple(ChunkTimes(camera, s, metas[s].group_times, metas[s].wall_origin)
                           for s in prepared.wanted_dense[:self._redense_max])
        return PendingAnswer(camera, text, seq_range, boosts, prepared,
                             list(engine.chunk_spans(camera)), engine.wall_origin(camera),
                             wanted)

    def recorded_frames(self, pending: MemoryAnswer | PendingAnswer) -> dict:
        """The frames of the chunks it wants dense again, read back from the recording
        (any thread: it touches only the recording, not the memory)."""
        if not isinstance(pending, PendingAnswer) or not pending.wanted:
            return {}
        t0 = time.perf_counter()
        try:
            return self._recorded.frames(list(pending.wanted))
        except Exception:  # noqa: BLE001 - a damaged recording: answer coarse, as without
            log.exception("camera %s: the recording could not be read back", pending.camera)
            return {}
        finally:
            with self._stats_lock:  # question threads read back at the same time
                self.seconds["redense_read"] += time.perf_counter() - t0

    def redense_ask(self, pending: PendingAnswer, frames: dict) -> PendingAnswer:
        """Between steps: prefill those chunks again and plan the question once more, so
        that they are read dense."""
        if self._backends.get(pending.camera) != "videoxl2":  # dropped or moved meanwhile
            return pending
        t0 = time.perf_counter()
        done = []
        # oldest first: a chunk's context (its predecessors) is then dense where they are
        for chunk in sorted(pending.wanted, key=lambda c: c.seq):
            if chunk.seq not in frames:
                continue
            try:
                if self.engine.redensify(pending.camera, chunk.seq, frames[chunk.seq]):
                    done.append(chunk.seq)
            except (KeyError, ValueError, RuntimeError) as exc:  # dropped meanwhile, a
                self.counters["redense_failed"] += 1  # full tier: it stays coarse
                log.warning("camera %s: chunk %d not dense again: %s", pending.camera,
                            chunk.seq, exc)
        if not done:
            return pending
        try:
            question = self.engine.prepare_question(pending.camera, pending.text,
                                                    seq_range=pending.seq_range,
                                                    boosts=pending.boosts, again=True)
        except (KeyError, ValueError, RuntimeError) as exc:  # e.g. no memory for a larger
            self.counters["redense_failed"] += 1  # graph: the first (coarse) plan answers
            log.warning("camera %s: the question's dense plan failed: %s", pending.camera, exc)
            return pending
        with self._stats_lock:
            self.counters["redensified"] += len(done)
            self.seconds["redense_prefill"] += time.perf_counter() - t0
        return replace(pending, question=question, redensified=tuple(done))

    def finish_ask(self, pending: MemoryAnswer | PendingAnswer) -> MemoryAnswer:
        """The decoding half: may run while the loop steps (it reads no memory)."""
        if isinstance(pending, MemoryAnswer):
            return pending
        result = self.engine.finish_question(pending.question)
        seq_of = tuple(next((seq for seq, t0, t1, _ in pending.spans if t0 <= a <= t1 + 1),
                            None) for a, _ in result.intervals)
        again = set(pending.redensified)
        used = tuple((int(s), REDENSE if k == "dense" and s in again else str(k))
                     for s, k in result.chunks_used)
        return MemoryAnswer(result.text, tuple(tuple(i) for i in result.intervals), seq_of,
                            used, dict(result.scores), pending.wall_origin)

    def sweep(self) -> int:
        return self.engine.sweep() if self.engine is not None else 0

    def persist(self, timeout_s: float = 300.0) -> bool:
        """Wait until the KV writes asked for so far are on the disk (write-behind)."""
        flush = getattr(self.engine.store, "flush", None) if self.engine is not None else None
        return bool(flush(timeout_s)) if flush is not None else True

    def close(self, timeout_s: float = 300.0) -> bool:
        """A clean stop: every KV write asked for reaches the disk."""
        close = getattr(self.engine.store, "close", None) if self.engine is not None else None
        return bool(close(timeout_s)) if close is not None else True

    def sync_phases(self, on: bool) -> None:
        """Time each phase of a step to the GPU (synchronise at its end): a profile's
        figures per phase are then each phase's own work; slower, so only meanwhile."""
        self._sync = on
        if self.engine is not None:
            self.engine.sync_phases = on

    def phase_seconds(self) -> dict[str, float]:
        """Seconds so far per phase of a step: the core's and the engine's."""
        engine = {} if self.engine is None else self.engine.seconds
        return {**{k: self.seconds[k] for k in ("mailbox", "standing")}, **engine}

    def stats(self) -> dict:
        out: dict[str, Any] = {"counters": dict(self.counters), "cv": self.cv.stats(),
                               "seconds": {k: round(v, 4) for k, v in self.seconds.items()}}
        if self.engine is not None:
            out["engine"] = self.engine.stats()
            store_stats = getattr(self.engine.store, "stats", None)
            if store_stats is not None:  # tiers, writer backlog, recovery point
                kv = store_stats()
                out["kv"] = {k: v for k, v in kv.items() if k != "cameras"}
        return out
