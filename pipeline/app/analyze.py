"""`xlwatch analyze`: the whole pipeline once over one file, in-process, no Ray, no DB.

Reads the file synchronously (`iter_chunks`: no drops), runs the CV analyzer on every
chunk, and for the `videoxl2` backend also prefills the engine's memory chunk by chunk,
then answers one question. Output times are seconds from the start of the file. It
stores nothing (the service path does that) and shows progress through a callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.ingest.analysis import emission
from pipeline.messages import Event, Question
from pipeline.query.core import MAX_QUESTION_CHARS, QueryError

Progress = Callable[[int, float], None]  # (chunks done, stream seconds done)


@dataclass(frozen=True)
class AnalyzeResult:
    answer: str
    intervals: list[dict]
    backend: str
    latency_ms: float
    events: list[Event]

    def as_json(self) -> dict:
        return {"answer": self.answer, "intervals": self.intervals, "backend": self.backend,
                "latency_ms": self.latency_ms}


def check_inputs(path: Path, question: str, backend: str, model_path: Path | None) -> None:
    if not path.is_file():
        raise QueryError("file", str(path), "no such file")
    if not question.strip():
        raise QueryError("question", question, "must not be empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QueryError("question", question, f"at most {MAX_QUESTION_CHARS} characters")
    if backend not in ("cv", "videoxl2"):
        raise QueryError("backend", backend, "expected 'cv' or 'videoxl2'")
    if backend == "videoxl2" and (model_path is None or not Path(model_path).is_dir()):
        raise QueryError("model_path", str(model_path),
                         "the videoxl2 backend needs a local checkpoint directory")


def analyze_file(cfg: Any, path: Path, question: str, backend: str = "cv",
                 model_path: Path | None = None, progress: Progress | None = None
                 ) -> AnalyzeResult:
    """Run ingest -> CV (-> engine) over `path` and answer `question`."""
    from model.cv import CVAnalyzer
    from pipeline.ingest.supervisor import iter_chunks
    from pipeline.wiring import ingest_options

    path = Path(path)
    check_inputs(path, question, backend, model_path)
    started = time.perf_counter()
    camera = "file"
    analyzer = CVAnalyzer(cfg.cv, lines=cfg.camera(camera).count_lines)
    memory = _llm_memory(cfg, model_path) if backend == "videoxl2" else None
    events: dict[str, Event] = {}
    # As for a file camera in the service: t = 0 is when reading started. The JSON output
    # uses stream seconds (t) only; the answer text shows both.
    wall_origin = time.time()
    stream_end = 0.0
    for n, chunk in enumerate(iter_chunks(str(path), ingest_options(cfg.camera(camera)),
                                          camera), 1):
        _collect(events, analyzer.process(chunk.analysis_frames, list(chunk.times),
                                          wall_origin), camera, chunk.seq, chunk.frame_size)
        if memory is not None:  # the service's memory core, stepped in-process
            memory.submit(chunk.for_memory())
            while not memory.idle():
                memory.step()
        stream_end = max(stream_end, float(chunk.end))
        if progress is not None:
            progress(n, chunk.end)
    _collect(events, analyzer.flush(), camera, None)
    stored = sorted(events.values(), key=lambda e: (e.t_start, e.kind))
    stored = [replace(e, id=i) for i, e in enumerate(stored, 1)]  # ids for evidence
    q = Question(camera, question, backend=backend)
    if memory is not None:
        from pipeline.query.llm import answer_llm

        answer = answer_llm(cfg, q, stored, memory.ask, wall_origin=wall_origin)
    else:
        from pipeline.query.core import answer_cv

        answer = answer_cv(cfg, q, stored, [], stream_end=stream_end)
    intervals = [{"start": round(i.t_start, 3), "end": round(i.t_end, 3), "label": i.label,
                  "confidence": round(i.confidence, 3)} for i in answer.intervals]
    latency = round((time.perf_counter() - started) * 1000, 1)
    return AnalyzeResult(answer.text, intervals, backend, latency, stored)


def _collect(out: dict[str, Event], events: list, camera: str, seq: int | None,
             size: tuple[int, int] | None = None) -> None:
    """Keep the latest emission of each event (start, then end) under its key."""
    for ev in events:
        key = ev.key or f"{ev.kind}-{ev.t_start}"
        prev = out.get(key)
        out[key] = Event.from_emission(emission(ev, 0.0, None), camera,
                                       chunk_seq=prev.chunk_seq if prev else seq,
                                       frame_size=size)


def _llm_memory(cfg: Any, model_path: Path | None) -> Any:
    """A MemoryCore over an engine that persists nothing, holding the one camera."""
    from pipeline.memory.core import MemoryCore
    from pipeline.memory.videoxl2 import build_engine

    core = MemoryCore(None, lambda: build_engine(cfg, None, model_path, persist=False))
    core.add_camera("file", "videoxl2")
    return core
