"""Answers for the cv backend: events and alerts of a window turned into text + intervals.

`answer_from_events` reads event-like objects (attributes kind, t_start, t_end,
wall_start, wall_end, confidence, thumbnail, id: database rows or `CVEvent`s) and
alert-like objects (kind or rule, message, wall_time, t, score, thumbnail, id or
alert_id), so it depends on no storage code. It filters to the intent's kinds and
window itself (callers may pre-filter). Wall times are written with the caller's
formatter, by default in the camera's zone as "Tue 14:03:21" (with the date when it is
more than six days before the question); every time also shows its stream second, and
footage without a wall clock (no wall times, or an intent with clock=False) shows stream
seconds only. Every interval keeps both stream seconds and wall times, and its evidence
thumbnail (bytes or a stored path, whatever the row holds). "first"/"last" questions
answer with the earliest or latest match only. Counts agree with their nouns: "1 person
was seen", "2 people were seen", "No person entered between ...".
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
    wall_start: float | None  # epoch seconds; None: the footage has no wall clock
    wall_end: float | None
    label: str  # event kind, or "alert:<rule>"
    confidence: float
    thumbnail: Any = None  # JPEG bytes or a stored path, as the source row had it
    event_id: Any = None  # the event row's id (None for alerts)
    is_alert: bool = False
    alert_id: Any = None  # the alert's id, for alerts
    ongoing: bool = False  # the event was still open: its end is the last report, not final
    person: Any = None  # who (person_enter's details person_id): one person, many sightings


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
    fmt = fmt or _default_fmt(intent.tz, getattr(intent, "now", None))
    point = intent.action in ("enter", "leave") or (
        intent.action == "count" and intent.kinds == ("person_leave",))
    # People in view in the first frame were there, they did not enter: an "entered"
    # answer leaves them out and says how many there were.
    entries = _asks_entries(intent)
    ivs, already = [], 0
    for e in events:
        if getattr(e, "kind", None) not in intent.kinds:
            continue
        iv = _event_interval(e)
        if iv is None or not _in_window(iv, intent, point):
            continue
        if entries and (getattr(e, "details", None) or {}).get("in_view_at_start"):
            already += 1
        else:
            ivs.append(iv)
    if intent.include_alerts:
        ivs += [iv for a in alerts
                if (iv := _alert_interval(a)) is not None and _in_window(iv, intent, True)]
    ivs.sort(key=lambda iv: (iv.wall_start is None, iv.wall_start or 0.0, iv.t_start))
    window = f" {intent.window}" if intent.window else ""
    say = _Say(fmt, getattr(intent, "clock", True))
    pick = getattr(intent, "pick", "")
    if pick and ivs:
        chosen = ivs[0] if pick == "first" else ivs[-1]
        return CVAnswer(_picked(intent, pick, chosen, len(ivs), window, say), (chosen,))
    text = _TEXT[intent.action](intent, ivs, window, say)
    if already:
        who = "1 person was" if already == 1 else f"{already} people were"
        text += f" {who} already in view at the start."
    return CVAnswer(text, tuple(ivs))


def _asks_entries(intent: QueryIntent) -> bool:
    """"When did people enter", "how many people entered" (not "how many were seen")."""
    return intent.kinds == ("person_enter",) and (
        intent.action == "enter"
        or (intent.action == "count" and "enter" in intent.question.lower()))


def _default_fmt(tz_name: str, now: float | None = None) -> Callable[[float], str]:
    zone = resolve_tz(tz_name)
    today = None if now is None else datetime.fromtimestamp(now, zone).date()

    def fmt(wall: float) -> str:
        at = datetime.fromtimestamp(wall, zone)
        if today is not None and 0 <= (today - at.date()).days <= 6:
            return at.strftime("%a %H:%M:%S")  # the weekday names the day unambiguously
        return at.strftime("%a %Y-%m-%d %H:%M:%S")

    return fmt


def _num(value: Any, default: float | None = None) -> float | None:
    if value is None:
        return default
    out = float(value)
    return default if math.isnan(out) else out


def _event_interval(e: Any) -> CVInterval | None:
    t0, w0 = _num(getattr(e, "t_start", None)), _num(getattr(e, "wall_start", None))
    if t0 is None:
        return None
    # An open event (t_end None) is still going on: it overlaps every later window.
    t1 = _num(getattr(e, "t_end", None))
    ongoing = t1 is None
    t1 = t0 if t1 is None else t1
    w1 = None if w0 is None else _num(getattr(e, "wall_end", None), w0 + (t1 - t0))
    thumb = getattr(e, "thumbnail", None)
    if thumb is None:
        thumb = getattr(e, "thumbnail_jpeg", None)
    person = (getattr(e, "details", None) or {}).get("person_id")
    return CVInterval(t0, t1, w0, w1, str(e.kind), float(getattr(e, "confidence", 0) or 0),
                      thumb, getattr(e, "id", getattr(e, "key", None)), ongoing=ongoing,
                      person=person)


def _alert_interval(a: Any) -> CVInterval | None:
    wall = _num(getattr(a, "wall_time", None), _num(getattr(a, "wall_start", None)))
    if wall is None:
        return None
    t = _num(getattr(a, "t", None), _num(getattr(a, "t_start", None), 0.0)) or 0.0
    name = getattr(a, "rule", None) or getattr(a, "kind", None) or "alert"
    aid = getattr(a, "alert_id", None)
    return CVInterval(t, t, wall, wall, f"alert:{name}", float(getattr(a, "score", 1) or 0),
                      getattr(a, "thumbnail", None), None, is_alert=True,
                      alert_id=aid if aid is not None else getattr(a, "id", None))


def _in_window(iv: CVInterval, intent: QueryIntent, point: bool) -> bool:
    """Point questions need the start in the window; others need any overlap. An event
    without a wall clock cannot be placed in a wall-clock window."""
    if intent.since is None and intent.until is None:
        return True
    since = -math.inf if intent.since is None else intent.since
    until = math.inf if intent.until is None else intent.until
    if intent.stream_window:
        start, end = iv.t_start, iv.t_end
    elif iv.wall_start is None or iv.wall_end is None:
        return False
    else:
        start, end = iv.wall_start, iv.wall_end
    if point:
        return since <= start <= until
    end = math.inf if iv.ongoing else end
    return end >= since and start <= until


class _Say:
    """Times as the operator reads them: wall clock and stream second, or stream only."""

    def __init__(self, fmt: Callable[[float], str], clock: bool) -> None:
        self.fmt, self.clock = fmt, clock

    def _wall(self, iv: CVInterval) -> bool:
        return self.clock and iv.wall_start is not None

    def at(self, iv: CVInterval) -> str:
        if not self._wall(iv):
            return f"t={iv.t_start:.1f}s"
        assert iv.wall_start is not None
        return f"{self.fmt(iv.wall_start)} (t={iv.t_start:.1f}s)"

    def span(self, iv: CVInterval) -> str:
        if iv.ongoing:
            return f"from {self.at(iv)}, still going on"
        if iv.t_end - iv.t_start < 0.05:
            return self.at(iv)
        if not self._wall(iv) or iv.wall_end is None:
            return f"t={iv.t_start:.1f}-{iv.t_end:.1f}s"
        assert iv.wall_start is not None
        return (f"{self.fmt(iv.wall_start)} to {self.fmt(iv.wall_end)} "
                f"(t={iv.t_start:.1f}-{iv.t_end:.1f}s)")


def _distinct(ivs: list[CVInterval]) -> int:
    """People among sightings: one per person id, and one per sighting without one."""
    return len({iv.person for iv in ivs if iv.person is not None}) + sum(
        1 for iv in ivs if iv.person is None)


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def _listing(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = len(items) - len(shown)
    text = "; ".join(shown)
    return text + (f"; and {more} more" if more else "")


def _enter_leave(intent, ivs, window, say) -> str:
    verb = "entered" if intent.action == "enter" else "left"
    if not ivs:
        return f"No person {verb}{window}."
    if len(ivs) == 1:
        return f"A person {verb}{window} at {say.at(ivs[0])}."
    # Several people entering together read as one moment with a head count.
    moments: dict[str, int] = {}
    for iv in ivs:
        moments[say.at(iv)] = moments.get(say.at(iv), 0) + 1
    items = [at if n == 1 else f"{at} ({_people(n)})" for at, n in moments.items()]
    return f"{_who(ivs, verb)}{window}: at " + _listing(items) + "."


def _who(ivs: list[CVInterval], verb: str) -> str:
    """"5 people entered", or "4 people entered 5 times" when someone came back (a person
    re-identified: each coming back is an entry, not another person)."""
    n, distinct = len(ivs), _distinct(ivs)
    return f"{_people(n)} {verb}" if distinct == n else f"{_people(distinct)} {verb} {n} times"


def _present(intent, ivs, window, say) -> str:
    if not ivs:
        return f"No person was seen{window}."
    n = _distinct(ivs)
    verb = "was" if n == 1 else "were"
    times = f", {len(ivs)} times in view" if n < len(ivs) else ""
    return (f"{_people(n)} {verb} seen{window}{times}: "
            + _listing([say.span(iv) for iv in ivs]) + ".")


def _count(intent, ivs, window, say) -> str:
    entered = intent.kinds == ("person_enter",) and "enter" in intent.question.lower()
    # "Seen" counts people (a person who came back twice is one); "entered" counts entries
    # (their coming back is an entry each time); "left" counts departures.
    n = _distinct(ivs) if intent.kinds == ("person_enter",) and not entered else len(ivs)
    verb = "left" if intent.kinds == ("person_leave",) else ("were seen" if n > 1 else
                                                             "was seen")
    if entered:
        verb = "entered"
    if not ivs:
        return f"No person {verb}{window}."
    first = f" (at {say.at(ivs[0])})" if n == 1 else f" (first at {say.at(ivs[0])})"
    return f"{_who(ivs, verb) if entered else f'{_people(n)} {verb}'}{window}{first}."


_WHAT = {"anomaly": "unusual events or alerts", "tamper": "camera tampering",
         "motion": "motion", "crowd": "crowds", "loitering": "loitering", "any": "events"}
_ONE = {"anomaly": "unusual event or alert", "tamper": "camera tampering",
        "motion": "motion", "crowd": "crowd", "loitering": "loitering", "any": "event"}


def _list(intent, ivs, window, say) -> str:
    if not ivs:
        return f"No {_WHAT[intent.label]}{window}."
    counts = Counter(_NAMES.get(iv.label, iv.label) for iv in ivs)
    summary = ", ".join(f"{n} {name}" for name, n in counts.most_common())
    items = [f"{_NAMES.get(iv.label, iv.label)} {say.span(iv)}" for iv in ivs]
    return f"{summary.capitalize()}{window}: " + _listing(items) + "."


def _picked(intent, pick: str, iv: CVInterval, n: int, window: str, say: _Say) -> str:
    """The first or last match only: "The last person left after 22:00 at ... (of 3)."."""
    of = f" ({pick} of {n})" if n > 1 else ""
    if intent.action in ("enter", "leave"):
        verb = "entered" if intent.action == "enter" else "left"
        return f"The {pick} person {verb}{window} at {say.at(iv)}{of}."
    if intent.action == "present":
        return f"A person was {pick} seen{window} {say.span(iv)}{of}."
    name = _NAMES.get(iv.label, iv.label)
    return f"The {pick} {_ONE[intent.label]}{window}: {name} {say.span(iv)}{of}."


_TEXT = {"enter": _enter_leave, "leave": _enter_leave, "present": _present,
         "count": _count, "list": _list}
