"""QueryCore: validate a question, answer it with the camera's backend, persist the query.

The single path every question takes (HTTP API, CLI, demo): edge validation (unknown
camera, empty or oversized question, reversed window, unknown backend: a `QueryError`
naming the field and the value, nothing stored), then the `cv` answer over stored events
or the `videoxl2` answer through the memory actor's engine (`llm_ask`, a plain callable
so this module never sees Ray), then one `queries` row with answer, intervals, evidence
and chunks used. It does not run detectors or the model itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.evidence import format_wall
from pipeline.messages import Answer, AnswerInterval, Event, Question
from pipeline.wiring import backend_of, camera_settings, database
from storage import repo

MAX_QUESTION_CHARS = 1000
BACKENDS = ("cv", "videoxl2")
LLMAsk = Callable[[str, str, tuple[float, float] | None, dict[int, float] | None], Any]


class QueryError(ValueError):
    """A question refused at the edge; the message names the field and the value."""

    def __init__(self, field: str, value: Any, why: str) -> None:
        # An oversized question is shown by its start and length, not echoed whole.
        shown = value if field != "question" or not isinstance(value, str) or len(
            value) <= 60 else f"{value[:57]}... ({len(value)} characters)"
        super().__init__(f"{field}: {why}; got {shown!r}")
        self.field, self.value, self.why = field, value, why

    def __reduce__(self) -> tuple:  # crosses Ray actor boundaries intact
        return (QueryError, (self.field, self.value, self.why))


def validate_question(question: Question, known_camera: bool) -> None:
    if not known_camera:
        raise QueryError("camera", question.camera, "unknown camera")
    text = question.text if isinstance(question.text, str) else ""
    if not text.strip():
        raise QueryError("question", question.text, "must not be empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise QueryError("question", text, f"at most {MAX_QUESTION_CHARS} characters")
    if (question.since is not None and question.until is not None
            and question.since > question.until):
        raise QueryError("until", question.until,
                         f"must not be before since ({question.since})")
    if question.backend is not None and question.backend not in BACKENDS:
        raise QueryError("backend", question.backend, f"expected one of {BACKENDS}")


class QueryCore:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.db = database(cfg)

    def answer(self, question: Question, llm_ask: LLMAsk | None = None) -> Answer:
        started = time.perf_counter()
        with self.db.session() as s:
            row = repo.get_camera(s, question.camera)
        validate_question(question, row is not None)
        backend = question.backend or backend_of(self.cfg, camera_settings(self.cfg, row))
        events = self._events(question)
        if backend == "videoxl2":
            if llm_ask is None:
                raise QueryError("backend", backend,
                                 "no video LLM memory holds this camera (is it running?)")
            from pipeline.query.llm import answer_llm

            answer = answer_llm(self.cfg, question, events, llm_ask)
        else:
            answer = answer_cv(self.cfg, question, events, self._alerts(question))
        answer = replace(answer, latency_ms=round((time.perf_counter() - started) * 1000, 1))
        return replace(answer, query_id=self._persist(question, answer))

    def _events(self, q: Question) -> list[Event]:
        with self.db.session() as s:
            rows = repo.list_events(s, q.camera, since=q.since, until=q.until, limit=100_000)
            return [Event.from_row(r, q.camera) for r in rows]

    def _alerts(self, q: Question) -> list[Any]:
        with self.db.session() as s:
            rows = repo.list_alerts(s, after_id=0, camera=q.camera, limit=10_000)
            return [r for r in rows if (q.since is None or r.wall_time >= q.since)
                    and (q.until is None or r.wall_time <= q.until)]

    def _persist(self, q: Question, a: Answer) -> int:
        with self.db.session() as s:
            rec = repo.add_query(
                s, q.camera, question=q.text, since=q.since, until=q.until,
                backend=a.backend, answer=a.text,
                intervals=[interval_json(i) for i in a.intervals],
                evidence=list(a.evidence_event_ids),
                chunks_used=[list(c) for c in a.chunks_used], latency_ms=a.latency_ms)
            return rec.id


def interval_json(i: AnswerInterval) -> dict:
    return {"start": i.start, "end": i.end, "t_start": i.t_start, "t_end": i.t_end,
            "label": i.label, "confidence": i.confidence, "thumbnail": i.thumbnail}


def answer_cv(cfg: Any, question: Question, events: list[Event],
              alerts: list[Any], fmt: Callable[[float], str] | None = None, *,
              stream_end: float | None = None) -> Answer:
    """Parse the question onto the CV vocabulary and answer from the stored events.

    A camera's footage carries wall times (live, or a file from when reading started);
    `stream_end` (the stream second where a file ended) says it has no wall clock of its
    own: times in the question are then stream times ("before 1:30" is 90 s) and "the last
    N minutes" ends at `stream_end` (`xlwatch analyze`)."""
    from model.cv import Unsupported, answer_from_events, parse_question

    tz = cfg.camera(question.camera).timezone
    intent = parse_question(question.text, time.time(), tz, clock=stream_end is None,
                            stream_end=stream_end)
    if isinstance(intent, Unsupported):
        return Answer(question.camera, question.text, intent.text, "cv")
    fmt = fmt or (lambda wall: format_wall(wall, None, tz))
    result = answer_from_events(intent, events, alerts, fmt)
    by_id = {e.id: e for e in events}
    intervals = tuple(_interval(i, by_id) for i in result.intervals)
    evidence = tuple(sorted({eid for i in result.intervals for eid in _event_ids(i)}))
    return Answer(question.camera, question.text, result.text, "cv", intervals,
                  evidence_event_ids=evidence)


def _event_ids(i: Any) -> list[int]:
    ids = getattr(i, "event_ids", None) or [getattr(i, "event_id", None)]
    return [x for x in ids if x is not None]


def _interval(i: Any, by_id: dict[int | None, Event]) -> AnswerInterval:
    ids = _event_ids(i)
    ev = by_id.get(ids[0]) if ids else None
    thumb = getattr(i, "thumbnail", None) or (ev.thumbnail if ev else None)
    t_start = float(i.t_start)
    t_end = float(i.t_end if i.t_end is not None else t_start)
    wall_start = getattr(i, "wall_start", None) or (ev.wall_start if ev else t_start)
    wall_end = getattr(i, "wall_end", None) or wall_start + (t_end - t_start)
    return AnswerInterval(wall_start, wall_end, t_start, t_end, str(getattr(i, "label", "")),
                          float(getattr(i, "confidence", 1.0) or 0.0), thumb)
