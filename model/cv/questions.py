"""Questions for the cv backend: map a question onto event kinds, an action and a window.

`parse_question` understands a small vocabulary (people entering, leaving, present or
counted; motion; crowds; loitering; camera tampering; "anything unusual"; "what
happened"), "first"/"last" (the earliest or latest matching event: "when did the last
person leave?", "the last time someone entered") and an optional time window
(timewindow.py: clock times, days and dates in the camera's zone, relative windows,
stream seconds). Anything else, or anything asking about appearance or other objects,
returns `Unsupported` with a text saying what the cv backend can answer and that open
questions need the `videoxl2` backend: it never guesses, and window words it cannot read
are refused, never dropped. Answer text is composed in answers.py (`answer_from_events`,
re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from model.cv.answers import CVAnswer, CVInterval, answer_from_events
from model.cv.events import ANOMALY_KINDS, EVENT_KINDS
from model.cv.timewindow import WindowError, parse_window, resolve_tz

MAX_QUESTION_CHARS = 1000

HELP_TEXT = (
    "The cv backend answers questions about people (when someone entered or left, "
    "whether anyone was present, how many people), motion, crowds, loitering, camera "
    "tampering (view blocked, blurred or moved) and anything unusual, optionally within "
    "a time window such as 'after 22:00', 'since 10pm', 'between 9 and 10', 'in the last "
    "hour', 'today', 'yesterday evening', 'on Monday', 'last Tuesday', 'on 3 March', "
    "'since Friday 18:00' or, in seconds of the footage, 'between 30 and 60 s', 'in the "
    "first 20 seconds', 'before 1:30 min'; and the first or last time something happened. "
    "For example: 'When did a person enter after 22:00?', 'When did the last person "
    "leave?' or 'Anything unusual since 10pm?'. Open questions about what people look "
    "like, what they do or other objects need the videoxl2 backend."
)

_LABELS: tuple[tuple[str, str], ...] = (  # first match wins, so specific before general
    ("tamper", r"tamper\w*|block(ed|ing)?|cover(ed)?|obstruct\w*|blur(red|ry)?|out of focus"
               r"|camera (was |been )?(moved|turned|re-?aimed|rotated)"),
    ("anomaly", r"unusual|anomal\w*|abnormal|suspicious\w*|strange|odd|weird|alerts?|alarms?"
                r"|incidents?|wrong|out of the ordinary"),
    ("loitering", r"loiter\w*|linger\w*|hanging around|hang around|stay(ed)? (for )?long"),
    ("crowd", r"crowd(s|ed)?|gathering|groups? of"),
    ("person", r"person|people|persons|someone|somebody|anyone|anybody|no ?one|man|men|"
               r"woman|women|visitors?|intruders?|pedestrians?|individuals?|humans?|who"),
    ("motion", r"motion|movement|moving|activity|active"),
    ("any", r"what happened|anything happen\w*|any events?|events"),
)
_COUNT = r"how many|number of|count"
_NUMBERED = r"(?!\s+(?:\d+|two|three|four|five|six|seven|eight|nine|ten|few)\b)"
_FIRST = rf"(?:first|earliest){_NUMBERED}"  # "the first 3 people" asks for three, not one
_LAST = rf"(?:last|latest|most recent|final|newest){_NUMBERED}"
_ENTER = (r"enter\w*|arriv\w*|c[oa]me in|comes in|walk(ed|s)? in|appear(ed|s)?|show(ed)? up"
          r"|first seen|g[oe]t in")
_LEAVE = (r"leave|left|leaving|leaves|exit\w*|depart\w*|go out|went out|walk(ed|s)? out"
          r"|disappear\w*|last seen|g[oe]t out")
# Words the cv backend has no detector for: answering would be a guess.
_OPEN = (
    r"colou?rs?|red|blue|green|yellow|white|black|grey|gray|brown|orange|purple|pink|"
    r"wear\w*|carry\w*|hold\w*|dress\w*|shirt|jacket|hat|bag|backpack|cars?|vehicles?|"
    r"trucks?|vans?|bikes?|bicycles?|motorcycles?|dogs?|cats?|animals?|plates?|licen[cs]e|"
    r"faces?|gender|age|old|young|tall|weapons?|guns?|knife|fight\w*|fall\w*|fell|run\w*|"
    r"lying|smok\w*|steal\w*|stole|throw\w*|threw|why|describe|look like|doing|sign|text|"
    r"read|says?"
)
_KINDS = {
    "tamper": ("tamper_blocked", "tamper_blurred", "tamper_moved"),
    "anomaly": ANOMALY_KINDS,
    "loitering": ("loitering",),
    "crowd": ("crowd",),
    "motion": ("motion",),
    "any": EVENT_KINDS,
}


@dataclass(frozen=True)
class QueryIntent:
    question: str
    label: str  # person, motion, crowd, loitering, tamper, anomaly, any
    action: str  # enter, leave, present, count, list
    kinds: tuple[str, ...]  # event kinds the answer reads
    since: float | None  # epoch seconds; None: from the start of the footage
    until: float | None  # epoch seconds; None: up to now
    window: str  # the window read back ("after 22:00"), "" when the question had none
    tz: str  # time zone name used for the window and the default formatter
    include_alerts: bool = False  # anomaly questions also list the window's alerts
    stream_window: bool = False  # since/until are stream seconds ("between 30 and 60 s")
    pick: str = ""  # "first" or "last": only the earliest or latest matching event
    now: float | None = None  # when it was asked (epoch seconds), for readable times
    clock: bool = True  # the footage has a wall clock (False: show stream seconds only)


@dataclass(frozen=True)
class Unsupported:
    question: str
    reason: str  # short machine-readable cause: "outside_vocabulary", "open_question", ...
    text: str  # what to show the operator


def parse_question(
    text: str, now_wall: float, tz: tzinfo | str | None = None, *,
    newest_wall: float | None = None, clock: bool = True, stream_end: float | None = None,
) -> QueryIntent | Unsupported:
    """Map a question onto an intent, or say why the cv backend cannot answer it.

    now_wall: when it is asked (epoch seconds); tz: the camera's time zone. newest_wall:
    the wall time of the camera's newest footage, so that "in the last 10 minutes" means
    the last 10 minutes recorded (default: up to now). clock=False: the footage has no
    wall clock (a file); times are read as stream time ("before 1:30" is 90 s) and day
    words are refused. stream_end: the stream second of the newest footage, for "in the
    last 10 s of the clip" (and for any "last N" when clock is False).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"question: must be non-empty text, got {text!r}")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"question: {len(text)} characters, at most {MAX_QUESTION_CHARS}")
    zone = resolve_tz(tz)
    low = " ".join(text.lower().replace("?", " ").split())
    try:
        now = datetime.fromtimestamp(now_wall, zone)
        newest = None if newest_wall is None else datetime.fromtimestamp(newest_wall, zone)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"now_wall: not a usable time ({exc})") from exc
    try:
        window = parse_window(low, now, clock=clock, newest=newest, stream_end=stream_end)
    except WindowError as exc:
        return Unsupported(text, "bad_window", f"{exc}. {HELP_TEXT}")
    rest = window.strip(low)
    if _has(rest, _OPEN):
        return Unsupported(text, "open_question", "The cv backend cannot answer this "
                           "question; it only knows its detector events. " + HELP_TEXT)
    label = next((name for name, pat in _LABELS if _has(rest, pat)), None)
    if label is None:
        return Unsupported(text, "outside_vocabulary", "The cv backend does not understand "
                           "this question. " + HELP_TEXT)
    action, kinds = _action(label, rest)
    first, last = _has(rest, _FIRST), _has(rest, _LAST)
    pick = "" if action == "count" or first == last else ("first" if first else "last")
    return QueryIntent(
        question=text, label=label, action=action, kinds=kinds, since=window.since,
        until=window.until, window=window.text, tz=str(getattr(zone, "key", zone)),
        include_alerts=label == "anomaly", stream_window=window.stream, pick=pick,
        now=float(now_wall), clock=clock,
    )


def _has(text: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text) is not None


def _action(label: str, text: str) -> tuple[str, tuple[str, ...]]:
    if label != "person":
        return "list", _KINDS[label]
    leave = _has(text, _LEAVE)
    enter = _has(text, _ENTER)
    if _has(text, _COUNT):
        return "count", ("person_leave",) if leave and not enter else ("person_enter",)
    if leave and not enter:
        return "leave", ("person_leave",)
    if enter:
        return "enter", ("person_enter",)
    return "present", ("person_enter",)


__all__ = [
    "CVAnswer", "CVInterval", "HELP_TEXT", "QueryIntent", "Unsupported", "answer_from_events",
    "parse_question",
]
