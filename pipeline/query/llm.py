"""The video LLM's answer: an engine question with relevance boosts for the chunks whose
CV events match it, and those events (with thumbnails) attached as evidence.

`llm_ask` is a plain callable (the memory actor's `ask` through Ray, or a `MemoryCore`
in-process for `analyze`) returning a `MemoryAnswer` in stream seconds; this module maps
it to wall-clock intervals. It does not decode or tier (model/engine, model/kv).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.evidence import thumbnail_relpath
from pipeline.messages import Answer, AnswerInterval, Event, MemoryAnswer, Question

# Question words -> CV event kinds whose chunks get a relevance boost.
_KIND_WORDS = {
    "person_enter": r"person|people|someone|anyone|anybody|man\b|woman|men\b|women|enter|"
                    r"arriv|came\b|walk",
    "person_leave": r"leave|left|exit|gone",
    "motion": r"motion|mov|activity|happen",
    "crowd": r"crowd|group|many",
    "loitering": r"loiter|linger|hang",
    "tamper_blocked": r"tamper|block|cover",
    "tamper_blurred": r"tamper|blur",
    "tamper_moved": r"tamper|moved|turn",
}
BOOST = 1.0


def boosts_for(question: str, events: list[Event]) -> dict[int, float]:
    """Per-chunk boost: BOOST for each chunk holding a CV event the question is about."""
    text = question.lower()
    # Word starts only: "camera" must not read as "came", "human" as "man".
    kinds = {k for k, pat in _KIND_WORDS.items() if re.search(rf"\b(?:{pat})", text)}
    out: dict[int, float] = {}
    for ev in events:
        if ev.kind in kinds and ev.chunk_seq is not None:
            out[ev.chunk_seq] = BOOST
    return out



def answer_llm(cfg: Any, question: Question, events: list[Event], llm_ask: Any,
               wall_origin: float | None = None) -> Answer:
    """Ask the engine, boosting chunks with matching CV events; attach them as evidence."""
    window = None
    if question.since is not None or question.until is not None:
        window = (question.since or 0.0, question.until or float("inf"))
    boosts = boosts_for(question.text, events)
    out: MemoryAnswer = llm_ask(question.camera, question.text, window, boosts or None)
    origin = wall_origin if wall_origin is not None else (out.wall_origin or 0.0)
    intervals, evidence = [], set()
    seqs = out.interval_seqs or (None,) * len(out.intervals)
    for (t0, t1), seq in zip(out.intervals, seqs, strict=True):
        near = [e for e in events if e.t_start <= t1 + 1.0 and (e.t_end or e.t_start) >= t0 - 1.0]
        evidence.update(e.id for e in near if e.id is not None)
        thumb = next((e.thumbnail for e in near if e.thumbnail), None) or _chunk_thumb(
            cfg, question.camera, seq)
        intervals.append(AnswerInterval(origin + t0, origin + t1, t0, t1, "answer",
                                        1.0, thumb))
    chunks_used = tuple((int(s), str(k)) for s, k in out.chunks_used)
    return Answer(question.camera, question.text, out.text, "videoxl2", tuple(intervals),
                  evidence_event_ids=tuple(sorted(evidence)), chunks_used=chunks_used)


def _chunk_thumb(cfg: Any, camera: str, seq: int | None) -> str | None:
    """The keyframe the ingest side saved for the chunk holding the interval's start."""
    if seq is None:
        return None
    rel = thumbnail_relpath(camera, f"chunk-{seq:08d}")
    return rel if (Path(cfg.data_dir) / rel).exists() else None
