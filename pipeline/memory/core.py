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
from collections import deque
from collections.abc import Callable
from typing import Any

from pipeline.evidence import thumbnail_relpath
from pipeline.memory.cv import CVMemory
from pipeline.messages import ChunkScores, MemoryAnswer, ModelChunk

log = logging.getLogger(__name__)
Standing = Callable[[str], list[tuple[str, str]]]  # camera -> [(rule name, question)]
NO_FOOTAGE = "No footage of this camera is stored for that time window."


class MemoryCore:
    def __init__(self, db: Any, engine_factory: Callable[[], Any] | None = None,
                 standing: Standing | None = None) -> None:
        self._db = db
        self._factory = engine_factory
        self.engine: Any = None
        self.cv = CVMemory(db)
        self._standing = standing or (lambda camera: [])
        self._backends: dict[str, str] = {}
        self._mail: dict[str, deque[ModelChunk]] = {}
        self._mail_lock = threading.Lock()
        self._important: set[tuple[str, int]] = set()
        self.counters = {"submitted": 0, "prefilled": 0, "steps": 0, "standing_batches": 0,
                         "refused": 0}

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
    def submit(self, chunk: ModelChunk) -> None:
        """Thread-safe; never waits. The engine's per-camera bound drops the oldest
        pending chunk (and counts it) when a camera's backlog outgrows it."""
        with self._mail_lock:
            self._mail.setdefault(chunk.camera, deque()).append(chunk)
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
                for chunk in chunks:
                    self._enqueue(camera, chunk)

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
        self._drain_mail()
        if self.engine is None or not self.engine.pending():
            return []
        results = self.engine.step()
        self.counters["steps"] += 1
        self.counters["prefilled"] += len(results)
        for r in results:
            if (r.camera, r.seq) in self._important:
                self._important.discard((r.camera, r.seq))
                self.engine.mark_important(r.camera, r.seq)
        return self._score(results)

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
        return self.finish_ask(self.prepare_ask(camera, text, wall_range, boosts))

    def prepare_ask(self, camera: str, text: str, wall_range: tuple[float, float] | None,
                    boosts: dict[int, float] | None) -> Any:
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
        return prepared, list(engine.chunk_spans(camera)), engine.wall_origin(camera)

    def finish_ask(self, prepared: Any) -> MemoryAnswer:
        """The decoding half: may run while the loop steps (it reads no memory)."""
        if isinstance(prepared, MemoryAnswer):
            return prepared
        question, spans, wall_origin = prepared
        result = self.engine.finish_question(question)
        seq_of = tuple(next((seq for seq, t0, t1, _ in spans if t0 <= a <= t1 + 1), None)
                       for a, _ in result.intervals)
        return MemoryAnswer(
            result.text, tuple(tuple(i) for i in result.intervals), seq_of,
            tuple((int(s), str(k)) for s, k in result.chunks_used), dict(result.scores),
            wall_origin)

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

    def stats(self) -> dict:
        out: dict[str, Any] = {"counters": dict(self.counters), "cv": self.cv.stats()}
        if self.engine is not None:
            out["engine"] = self.engine.stats()
            store_stats = getattr(self.engine.store, "stats", None)
            if store_stats is not None:  # tiers, writer backlog, recovery point
                kv = store_stats()
                out["kv"] = {k: v for k, v in kv.items() if k != "cameras"}
        return out
