"""Answers for the cv backend: events and alerts of a window turned into text + intervals.

`answer_from_events` reads event-like objects (attributes kind, t_start, t_end,
wall_start, wall_end, confidence, thumbnail, id: database rows or `CVEvent`s) and
alert-like objects (kind or rule, message, wall_time, t, score, thumbnail, id or
alert_id), so it depends on no storage code. It filters to the intent's kinds and
window itself (callers may pre-filter). Wall times are written with the caller's
formatter; every interval keeps both stream seconds and wall times, and its evidence
thumbnail (bytes or a stored path, whatever the row holds).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from model.cv.timewindow import resolve_tz

if TYPE_CHECKING:
    from model.cv.questions import QueryIntent

MAX_LISTED = 10

_NAMES = {
    "person_enter": "person present", "person_leave": "person left", "motion": "motion",
    "crowd": "crowd", "loitering": "loitering", "tamper_blocked": "camera view blocked",
    "tamper_blurred": "camera view blurred", "tamper_moved": "camera moved",
}


@dataclass(frozen=True)
class CVInterval:
    t_start: float  # seconds since the stream origin
    t_end: float
    wall_start: float  # epoch seconds
    wall_end: float
    label: str  # event kind, or "alert:<rule>"
    confidence: float
    thumbnail: Any = None  # JPEG bytes or a stored path, as the source row had it
    event_id: Any = None  # the event row's id (None for alerts)
    is_alert: bool = False
    alert_id: Any = None  # the alert's id, for alerts
    ongoing: bool = False  # the event was still open: its end is the last report, not final


@dataclass(frozen=True)
class CVAnswer:
    text: str
    intervals: tuple[CVInterval, ...]


def answer_from_events(
    intent: QueryIntent,
    events: Iterable[Any],
    alerts: Iterable[Any] = (),
    fmt: Callable[[float], str] | None = None,
) -> CVAnswer:
    """Compose the answer to `intent` from events (and alerts for anomaly questions)."""
    fmt = fmt or _default_fmt(intent.tz)
    point = intent.action in ("enter", "leave") or (
        intent.action == "count" and intent.kinds == ("person_leave",))
    ivs = [iv for e in events if getattr(e, "kind", None) in intent.kinds
           and (iv := _event_interval(e)) is not None and _in_window(iv, intent, point)]
    if intent.include_alerts:
        ivs += [iv for a in alerts
                if (iv := _alert_interval(a)) is not None and _in_window(iv, intent, True)]
    ivs.sort(key=lambda iv: (iv.wall_start, iv.t_start))
    window = f" {intent.window}" if intent.window else ""
    text = _TEXT[intent.action](intent, ivs, window, fmt)
    return CVAnswer(text, tuple(ivs))


def _default_fmt(tz_name: str) -> Callable[[float], str]:
    zone = resolve_tz(tz_name)
    return lambda wall: datetime.fromtimestamp(wall, zone).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any, default: float | None = None) -> float | None:
    if value is None:
        return default
    out = float(value)
    return default if math.isnan(out) else out


def _event_interval(e: Any) -> CVInterval | None:
    t0, w0 = _num(getattr(e, "t_start", None)), _num(getattr(e, "wall_start", None))
    if t0 is None or w0 is None:
        return None
    # An open event (t_end None) is still going on: it overlaps every later window.
    t1 = _num(getattr(e, "t_end", None))
    ongoing = t1 is None
    t1 = t0 if t1 is None else t1
    w1 = _num(getattr(e, "wall_end", None), w0 + (t1 - t0))
    thumb = getattr(e, "thumbnail", None)
    if thumb is None:
        thumb = getattr(e, "thumbnail_jpeg", None)
    return CVInterval(t0, t1, w0, w1, str(e.kind), float(getattr(e, "confidence", 0) or 0),
                      thumb, getattr(e, "id", getattr(e, "key", None)), ongoing=ongoing)


def _alert_interval(a: Any) -> CVInterval | None:
    wall = _num(getattr(a, "wall_time", None), _num(getattr(a, "wall_start", None)))
    if wall is None:
        return None
    t = _num(getattr(a, "t", None), _num(getattr(a, "t_start", None), 0.0))
    name = getattr(a, "rule", None) or getattr(a, "kind", None) or "alert"
    aid = getattr(a, "alert_id", None)
    return CVInterval(t, t, wall, wall, f"alert:{name}", float(getattr(a, "score", 1) or 0),
                      getattr(a, "thumbnail", None), None, is_alert=True,
                      alert_id=aid if aid is not None else getattr(a, "id", None))


def _in_window(iv: CVInterval, intent: QueryIntent, point: bool) -> bool:
    """Point questions need the start in the window; others need any overlap."""
    since = -math.inf if intent.since is None else intent.since
    until = math.inf if intent.until is None else intent.until
    start = iv.t_start if intent.stream_window else iv.wall_start
    if point:
        return since <= start <= until
    end = math.inf if iv.ongoing else (iv.t_end if intent.stream_window else iv.wall_end)
    return end >= since and start <= until


def _at(iv: CVInterval, fmt: Callable[[float], str]) -> str:
    return f"{fmt(iv.wall_start)} (t={iv.t_start:.1f}s)"


def _span(iv: CVInterval, fmt: Callable[[float], str]) -> str:
    if iv.ongoing:
        return f"from {_at(iv, fmt)}, still going on"
    if iv.t_end - iv.t_start < 0.05:
        return _at(iv, fmt)
    return f"{fmt(iv.wall_start)} to {fmt(iv.wall_end)} (t={iv.t_start:.1f}-{iv.t_end:.1f}s)"


def _listing(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = len(items) - len(shown)
    text = "; ".join(shown)
    return text + (f"; and {more} more" if more else "")


def _enter_leave(intent, ivs, window, fmt) -> str:
    verb = "entered" if intent.action == "enter" else "left"
    if not ivs:
        return f"No person {verb}{window}."
    if len(ivs) == 1:
        return f"A person {verb}{window} at {_at(ivs[0], fmt)}."
    # Several people entering together read as one moment with a head count.
    moments: dict[str, int] = {}
    for iv in ivs:
        moments[_at(iv, fmt)] = moments.get(_at(iv, fmt), 0) + 1
    items = [at if n == 1 else f"{at} ({n} people)" for at, n in moments.items()]
    return f"{len(ivs)} people {verb}{window}: at " + _listing(items) + "."


def _present(intent, ivs, window, fmt) -> str:
    if not ivs:
        return f"No person was seen{window}."
    return (f"People were seen{window} {len(ivs)} time(s): "
            + _listing([_span(iv, fmt) for iv in ivs]) + ".")


def _count(intent, ivs, window, fmt) -> str:
    verb = "left" if intent.kinds == ("person_leave",) else "were seen"
    if intent.kinds == ("person_enter",) and "enter" in intent.question.lower():
        verb = "entered"
    first = f" (first at {_at(ivs[0], fmt)})" if ivs else ""
    return f"{len(ivs)} {'person' if len(ivs) == 1 else 'people'} {verb}{window}{first}."


def _list(intent, ivs, window, fmt) -> str:
    what = {"anomaly": "unusual events or alerts", "tamper": "camera tampering",
            "motion": "motion", "crowd": "crowds", "loitering": "loitering",
            "any": "events"}[intent.label]
    if not ivs:
        return f"No {what}{window}."
    counts = Counter(_NAMES.get(iv.label, iv.label) for iv in ivs)
    summary = ", ".join(f"{n} {name}" for name, n in counts.most_common())
    items = [f"{_NAMES.get(iv.label, iv.label)} {_span(iv, fmt)}" for iv in ivs]
    return f"{summary.capitalize()}{window}: " + _listing(items) + "."


_TEXT = {"enter": _enter_leave, "leave": _enter_leave, "present": _present,
         "count": _count, "list": _list}
