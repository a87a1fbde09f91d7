"""CPU vision backend (`cv`): motion, people, tracks, tamper checks, events, questions.

Plain OpenCV/numpy code with no Ray, SQL or Redis: `CVAnalyzer` turns sampled BGR frames
into `CVEvent`s; `parse_question` and `answer_from_events` answer the questions its
vocabulary covers and say clearly when a question needs the `videoxl2` backend. Names are
imported on first use, so `model.cv.config` loads without OpenCV.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "CVAnalyzer": "analyzer", "CVConfig": "config", "CVAnswer": "answers",
    "CVInterval": "answers", "answer_from_events": "answers", "ANOMALY_KINDS": "events",
    "EVENT_KINDS": "events", "CVEvent": "events", "HELP_TEXT": "questions",
    "QueryIntent": "questions", "Unsupported": "questions", "parse_question": "questions",
    "render_thumbnail": "thumbnails",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'model.cv' has no attribute {name!r}")
    return getattr(import_module(f"model.cv.{_WHERE[name]}"), name)
