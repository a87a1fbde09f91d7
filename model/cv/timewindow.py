"""Time windows in questions: "after 22:00", "since 10pm", "between 9 and 10",
"in the last hour", "today", "yesterday", "this morning", "last night".

Turns the phrase into [since, until] epoch seconds in the operator's time zone, relative
to `now`. Pure functions; it knows nothing about labels or events. Times of day without
am/pm are read on the 24-hour clock; a window that would start in the future refers to
the previous day ("after 22:00" asked at 08:00 means last night).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

_NUM_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
              "six": 6, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30}
_UNITS = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600, "hr": 3600,
          "day": 86400, "week": 604800}
_TOD = r"(?:noon|midnight|\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)?)"
_RELATIVE = re.compile(
    r"\b(?:in|during|over|within|for)?\s*(?:the\s+)?(?:last|past|previous)\s+"
    r"(?:(\d+(?:\.\d+)?|" + "|".join(_NUM_WORDS) + r")\s+)?"
    r"(second|sec|minute|min|hour|hr|day|week)s?\b"
)
_BETWEEN = re.compile(r"\b(?:between|from)\s+(" + _TOD + r")\s+(?:and|to|until|-)\s+(" + _TOD + r")")
_AFTER = re.compile(r"\b(after|since|from|past)\s+(" + _TOD + r")(?![\w:])")
_BEFORE = re.compile(r"\b(before|until|till|by)\s+(" + _TOD + r")(?![\w:])")
_AROUND = re.compile(r"\b(at|around|about)\s+(" + _TOD + r")(?![\w:])")
_PARTS = {  # named parts of a day: (start hour, end hour, day offset)
    "this morning": (6, 12, 0), "this afternoon": (12, 18, 0), "this evening": (18, 24, 0),
    "tonight": (18, 30, 0), "last night": (18, 30, -1), "overnight": (18, 30, -1),
}


NOW_S = 60.0  # how far back "now" reaches


class WindowError(ValueError):
    """A window phrase that names an impossible time (e.g. "after 25:00")."""


@dataclass(frozen=True)
class Window:
    since: float | None  # epoch seconds (stream seconds with `stream`), inclusive; None: open
    until: float | None
    text: str  # the window as an operator would read it back, "" when none
    span: tuple[int, int] = (0, 0)  # where the phrase sat in the question
    stream: bool = False  # since/until are seconds of the camera's stream ("between 30 and 60 s")


def parse_window(text: str, now: datetime) -> Window:
    """The first time window phrase in lower-case `text`, relative to aware `now`."""
    for parse in (_stream, _relative, _between, _day_part, _after, _before, _around, _day,
                  _now):
        found = parse(text, now)
        if found is not None:
            return found
    return Window(None, None, "")


def parse_time_of_day(token: str) -> time:
    tok = token.strip().replace(".", "")
    if tok == "noon":
        return time(12, 0)
    if tok == "midnight":
        return time(0, 0)
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", tok)
    if m is None:
        raise WindowError(f"time of day: cannot read {token!r}")
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if half is not None:
        if not 1 <= hour <= 12:
            raise WindowError(f"time of day: hour {hour} is not valid with {half} in {token!r}")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise WindowError(f"time of day: {token!r} is not a valid time")
    return time(hour, minute)


def _at(now: datetime, tod: time, day_offset: int = 0) -> datetime:
    day = now.date() + timedelta(days=day_offset)
    return datetime.combine(day, tod, tzinfo=now.tzinfo)


def _past(now: datetime, tod: time) -> datetime:
    """The most recent moment with this time of day that is not in the future."""
    at = _at(now, tod)
    return at if at <= now else at - timedelta(days=1)


def _fmt(tod: time) -> str:
    return tod.strftime("%H:%M")


_SECS = r"(\d+(?:\.\d+)?)"
_SUNIT = r"\s*(?:s|secs?|seconds?)\b"
_STREAM = [  # (pattern, kind): stream seconds, always with a unit on the last number
    (re.compile(rf"\b(?:between|from)\s+{_SECS}(?:{_SUNIT})?\s+(?:and|to|until|-)\s+"
                rf"{_SECS}{_SUNIT}"), "between"),
    (re.compile(rf"\b(?:after|since|from)\s+{_SECS}{_SUNIT}"), "after"),
    (re.compile(rf"\b(?:before|until|by|in the first)\s+{_SECS}{_SUNIT}"), "before"),
]


def _stream(text: str, now: datetime) -> Window | None:
    """Seconds of the footage: "between 30 and 60 s", "after 45 s", "in the first 20 s"."""
    for pattern, kind in _STREAM:
        m = pattern.search(text)
        if m is None:
            continue
        a = float(m.group(1))
        if kind == "between":
            b = float(m.group(2))
            if b < a:
                raise WindowError(f"time window: {b:g} s is before {a:g} s in {m.group(0)!r}")
            return Window(a, b, f"between {a:g} s and {b:g} s", m.span(), stream=True)
        if kind == "after":
            return Window(a, None, f"after {a:g} s", m.span(), stream=True)
        return Window(0.0, a, f"in the first {a:g} s", m.span(), stream=True)
    return None


def _day_label(start: datetime, now: datetime) -> str:
    """" yesterday" when a time of day had to be read on the previous day."""
    return " yesterday" if start.date() < now.date() else ""


def _relative(text: str, now: datetime) -> Window | None:
    m = _RELATIVE.search(text)
    if m is None:
        return None
    raw = m.group(1)
    n = 1.0 if raw is None else float(_NUM_WORDS.get(raw, raw))
    seconds = n * _UNITS[m.group(2)]
    unit = m.group(2) + ("s" if n != 1 else "")
    label = f"in the last {unit}" if raw in (None, "a", "an") else f"in the last {raw} {unit}"
    return Window(now.timestamp() - seconds, now.timestamp(), label, m.span())


def _between(text: str, now: datetime) -> Window | None:
    m = _BETWEEN.search(text)
    if m is None:
        return None
    a, b = parse_time_of_day(m.group(1)), parse_time_of_day(m.group(2))
    start = _past(now, a)
    end = _at(start, b)
    if end <= start:  # "between 22:00 and 02:00" crosses midnight
        end += timedelta(days=1)
    return Window(start.timestamp(), end.timestamp(),
                  f"between {_fmt(a)} and {_fmt(b)}{_day_label(start, now)}", m.span())


def _after(text: str, now: datetime) -> Window | None:
    m = _AFTER.search(text)
    if m is None:
        return None
    tod = parse_time_of_day(m.group(2))
    word = "since" if m.group(1) in ("since", "from") else "after"
    start = _past(now, tod)  # a time still to come today means yesterday's: said so
    return Window(start.timestamp(), None, f"{word} {_fmt(tod)}{_day_label(start, now)}",
                  m.span())


def _before(text: str, now: datetime) -> Window | None:
    m = _BEFORE.search(text)
    if m is None:
        return None
    tod = parse_time_of_day(m.group(2))
    end = _past(now, tod)
    start = datetime.combine(end.date(), time(0, 0), tzinfo=now.tzinfo)
    return Window(start.timestamp(), end.timestamp(),
                  f"before {_fmt(tod)}{_day_label(end, now)}", m.span())


def _around(text: str, now: datetime) -> Window | None:
    m = _AROUND.search(text)
    if m is None:
        return None
    tod = parse_time_of_day(m.group(2))
    at = _past(now, tod)
    half = timedelta(minutes=15)
    return Window((at - half).timestamp(), (at + half).timestamp(),
                  f"around {_fmt(tod)}{_day_label(at, now)}", m.span())


def _day_part(text: str, now: datetime) -> Window | None:
    for phrase, (h0, h1, offset) in _PARTS.items():
        i = text.find(phrase)
        if i < 0:
            continue
        start = _at(now, time(h0), offset)
        end = start + timedelta(hours=h1 - h0)
        return Window(start.timestamp(), min(end, now).timestamp(), phrase, (i, i + len(phrase)))
    return None


def _day(text: str, now: datetime) -> Window | None:
    midnight = datetime.combine(now.date(), time(0, 0), tzinfo=now.tzinfo)
    for word, start, end in (("yesterday", midnight - timedelta(days=1), midnight),
                             ("today", midnight, now)):
        m = re.search(rf"\b{word}\b", text)
        if m is not None:
            return Window(start.timestamp(), end.timestamp(), word, m.span())
    return None


def _now(text: str, now: datetime) -> Window | None:
    """"Now" means the last minute: a person still in view has an event open until now."""
    m = re.search(r"\b(?:right now|now|currently|at the moment|at present)\b", text)
    if m is None:
        return None
    return Window(now.timestamp() - NOW_S, now.timestamp(), "right now", m.span())


def resolve_tz(tz: tzinfo | str | None) -> tzinfo:
    """A tzinfo from a name ("Europe/Paris"), a tzinfo, or None (UTC)."""
    from datetime import UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"tz: unknown time zone {tz!r}") from exc
