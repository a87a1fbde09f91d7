"""CPU vision backend (`cv`): motion, people, tracks, tamper checks, events, questions.

Plain OpenCV/numpy code with no Ray, SQL or Redis: `CVAnalyzer` turns sampled BGR frames
into `CVEvent`s; `parse_question` and `answer_from_events` answer the questions its
vocabulary covers and say clearly when a question needs the `videoxl2` backend.
"""

from model.cv.analyzer import CVAnalyzer, CVConfig
from model.cv.answers import CVAnswer, CVInterval, answer_from_events
from model.cv.events import ANOMALY_KINDS, EVENT_KINDS, CVEvent
from model.cv.questions import HELP_TEXT, QueryIntent, Unsupported, parse_question
from model.cv.thumbnails import render_thumbnail

__all__ = [
    "ANOMALY_KINDS", "EVENT_KINDS", "HELP_TEXT", "CVAnalyzer", "CVAnswer", "CVConfig",
    "CVEvent", "CVInterval", "QueryIntent", "Unsupported", "answer_from_events",
    "parse_question", "render_thumbnail",
]
