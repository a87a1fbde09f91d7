"""Time windows in questions, resolved in the camera's time zone.

Turns the window words of a question into [since, until]: epoch seconds, or seconds of
the camera's stream for stream windows. Pure functions (standard library only: zoneinfo
for the zones); it knows nothing about labels or events.

Understood (one window per question; a day may be combined with a time of day):

* times of day: "after 22:00", "since 10pm", "from 9 o'clock", "before 9am",
  "between 9 and 10" (a time still to come today means yesterday's, and the window read
  back says "yesterday"), "around 23:00" (+-15 min), "at noon";
* days: "today", "yesterday", "the day before yesterday", "on Monday" (the latest Monday,
  today included), "last Tuesday" (before today), "this Friday" (this week's), "on 3
  March", "March 3rd 2026", "on 2026-11-30"; with a part of the day ("yesterday
  evening", "Monday morning", "this afternoon", "tonight", "last night", "at night") or a
  time ("since Friday 18:00", "yesterday after 22:00", "on Monday between 9 and 10");
  "since Friday", "before Monday", "after 3 March";
* relative: "in the last 10 minutes", "the past hour", "last week" (up to the newest
  footage when the caller knows it, else now), "right now" (the last minute);
* stream seconds: "between 30 and 60 s", "between 30s and 1 min", "in the first 20
  seconds", "after 45 s", "before 1:30 min", "t=90", "after 2:05 into the clip", "in the
  last 10 s of the video".

The m:ss rule: a number with a unit (s, sec, min, m) or after "t=", or a time followed by
"into/of the clip/video/footage/recording/stream", is stream time ("1:30 min" is 90 s).
Otherwise "H:MM" is a clock time ("22:00", "1:30" is 01:30) -- the window read back shows
the reading -- unless the caller says the footage has no wall clock (`clock=False`), in
which case "1:30" is 90 s of stream, "1:02:03" 3723 s, and clock words (days, am/pm)
are refused. A bare number ("after 45") is never guessed at: it is a time of day.

Anything left over that looks like a time ("tomorrow", "at 9.30", a second day, "in 2
minutes"), an impossible time, or a window ending before it starts raises `WindowError`
naming the words: never a silently wrong window. Nonexistent local times (the spring
DST gap) resolve to the end of the gap, repeated ones (autumn) to their first occurrence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_NUM_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
              "six": 6, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30}
_UNITS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600,
          "hr": 3600, "h": 3600, "day": 86400, "week": 604800}
_UNIT_NAMES = {"sec": "second", "s": "second", "min": "minute", "m": "minute", "hr": "hour",
               "h": "hour"}
_NOT_A_TIME = (r"(?!\s*(?:people|persons?|times|visitors?|individuals?|men|women|humans?|"
               r"minutes?|mins?|seconds?|secs?|hours?|hrs?|days?|weeks?)\b)")
_END = r"(?![\w:]|\.\d)"  # a time ends here: not inside "9.30", "10:7" or "1e9"
_TOD = r"(?:noon|midnight|\d{1,2}(?::\d{2})?(?:\s*(?:a\.?m\.?|p\.?m\.?|o'?clock))?)"
_CLIPS = r"(?:clip|video|footage|recording|stream|file)"
_RELATIVE = re.compile(
    r"\b(?:(?:in|during|over|within|for)\s+)?(?:the\s+)?(?:last|past|previous)\s+"
    r"(?:(\d+(?:\.\d+)?|" + "|".join(_NUM_WORDS) + r")\s*)?"
    r"(second|sec|s|minute|min|m|hour|hr|h|day|week)s?\b"
    rf"(\s+(?:of|in)\s+(?:the\s+)?{_CLIPS})?"
)
_BETWEEN = re.compile(rf"\b(?:between|from)\s+({_TOD})\s+(?:and|to|until|till|-)\s+({_TOD}){_END}")
_AFTER = re.compile(rf"\b(after|since|from|past)\s+({_TOD}){_END}{_NOT_A_TIME}")
_BEFORE = re.compile(rf"\b(before|until|till|by)\s+({_TOD}){_END}{_NOT_A_TIME}")
_AROUND = re.compile(rf"\b(at|around|about)\s+({_TOD}){_END}{_NOT_A_TIME}")
_UNTIL_NOW = re.compile(r"\b(?:until|till|up to|up till|to)\s+now\b")
_NOW = re.compile(r"\b(?:right now|now|currently|at the moment|at present)\b")

_WEEKDAYS = {"monday": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "thursday": 3,
             "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5,
             "sunday": 6}
_MONTHS = {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
           "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
           "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "october": 10,
           "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12}
_WD = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_MON = "|".join(sorted(_MONTHS, key=len, reverse=True))
_PARTS = {"morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24), "night": (18, 30)}
_PART = r"(?:\s+(?:in\s+the\s+)?(morning|afternoon|evening|night))?"
_ON = r"(?:\bon\s+(?:the\s+)?)?"
_DATES = [  # (pattern, kind): each anchors the window on one calendar day
    (re.compile(rf"{_ON}\b(\d{{4}})-(\d{{1,2}})-(\d{{1,2}})\b{_PART}"), "iso"),
    (re.compile(rf"{_ON}\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\b\.?"
                rf"(?:,?\s+(\d{{4}})\b)?{_PART}"), "dmy"),
    (re.compile(rf"{_ON}\b({_MON})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!:)"
                rf"(?:,?\s+(\d{{4}})\b)?{_PART}"), "mdy"),
    (re.compile(rf"\b(?:the\s+)?day\s+before\s+yesterday\b{_PART}"), "-2"),
    (re.compile(rf"\byesterday\b{_PART}"), "-1"),
    (re.compile(rf"\btoday\b{_PART}"), "0"),
    (re.compile(rf"{_ON}\b(?:(last|this|past|previous)\s+)?({_WD})\b\.?{_PART}"), "weekday"),
]
_PART_ALONE = [  # parts of a day with no day word: (pattern, day offset, part)
    (re.compile(r"\bthis\s+(morning|afternoon|evening)\b"), 0, None),
    (re.compile(r"\btonight\b"), 0, "night"),
    (re.compile(r"\b(?:last\s+night|overnight)\b"), -1, "night"),
    (re.compile(r"\b(?:in\s+the|during\s+the|at)\s+(morning|afternoon|evening|night)\b"),
     None, None),
]
_PREFIX = re.compile(r"\b(since|from|after|before|until|till|by)\s+$")

_SNUM = r"\d+(?:\.\d+)?"
_SUNIT = r"(?:s|secs?|seconds?|m|mins?|minutes?|hrs?|hours?)"
_SCLK = r"\d{1,3}:\d{2}(?::\d{2})?"
_SVAL = (rf"((?:t\s*=\s*)?(?:{_SCLK}|{_SNUM})(?:\s*{_SUNIT}\b(?:\s*{_SNUM}\s*{_SUNIT}\b)?)?)"
         rf"{_END}")
_SSUF = rf"(\s+(?:into|of|in)\s+(?:the\s+)?{_CLIPS}\b)?"
_STREAM = [  # (pattern, kind): stream time when a value is marked (unit, "t=", suffix)
    (re.compile(rf"\b(?:between|from)\s+{_SVAL}\s+(?:and|to|until|till|-)\s+{_SVAL}{_SSUF}"),
     "between"),
    (re.compile(rf"\b(?:(?:in|during|within)\s+)?(?:the\s+)?first\s+{_SVAL}{_SSUF}"), "first"),
    (re.compile(rf"\b(?:(?:in|during|within)\s+)?(?:the\s+)?first\s+(second|minute|hour)\b"
                rf"()(\s+(?:of|in)\s+(?:the\s+)?{_CLIPS}\b)?"), "first1"),
    (re.compile(rf"\b(?:after|since|from)\s+{_SVAL}{_SSUF}{_NOT_A_TIME}"), "after"),
    (re.compile(rf"\b(?:before|until|till|by)\s+{_SVAL}{_SSUF}{_NOT_A_TIME}"), "before"),
]
_FUTURE = re.compile(rf"\b(?:tomorrow|next\s+(?:{_WD}|week|month|year|day|hour|minute|"
                     r"morning|afternoon|evening|night|weekend))\b")
_LEFTOVER = re.compile(
    r"\d{1,2}:\d{2}"
    r"|\b\d+(?:\.\d+)?\s*(?:a\.?m\b\.?|p\.?m\b\.?|o'?clock|s|secs?|seconds?|m|mins?|minutes?|h|"
    r"hrs?|hours?|days?|weeks?|months?|years?)(?!\w)"
    r"|\b(?:yesterday|today|tonight|morning|afternoon|evening|overnight|noon|midnight|"
    r"weekend|weekdays?|week|month|year|ago|" + _WD + r"|january|february|april|june|july|"
    r"august|september|october|november|december)\b"
    r"|\b(?:last|this|past|at|in the)\s+night\b"
    r"|\b(?:after|before|since|until|till|between|around|at|from|by|about|first|on)\s+"
    r"\d+(?:[.:]\d+)?(?![\d.:])" + _NOT_A_TIME +
    r"|\bt\s*=\s*\d|\b\d{4}-\d{1,2}-\d{1,2}\b"
)

NOW_S = 60.0  # how far back "now" reaches
AROUND_S = 15 * 60.0  # "around 23:00" is 22:45-23:15


class WindowError(ValueError):
    """Window words that name an impossible, future, reversed or unreadable time."""


@dataclass(frozen=True)
class Window:
    since: float | None  # epoch seconds (stream seconds with `stream`), inclusive; None: open
    until: float | None
    text: str  # the window as an operator would read it back, "" when none
    span: tuple[int, int] = (0, 0)  # from the first to the last window word in the question
    stream: bool = False  # since/until are seconds of the camera's stream ("between 30 and 60 s")
    spans: tuple[tuple[int, int], ...] = ()  # every stretch of window words

    def strip(self, text: str) -> str:
        """`text` with the window words blanked (indices kept)."""
        for a, b in self.spans:
            text = text[:a] + " " * (b - a) + text[b:]
        return text


def parse_window(text: str, now: datetime, *, clock: bool = True,
                 newest: datetime | None = None, stream_end: float | None = None) -> Window:
    """The time window in lower-case `text`, relative to aware `now` (the camera's zone).

    clock: the footage has a wall clock (False: a file without one; times are stream
    time). newest: the newest footage's wall time, for "in the last 10 minutes" (default:
    now). stream_end: the stream second of the newest footage, for stream-relative windows.
    """
    try:
        win = _Scan(text, now, clock, newest, stream_end).window()
    except WindowError:
        raise
    except (ValueError, OverflowError) as exc:  # a date outside the calendar
        raise WindowError(f"time window: cannot place {text!r} ({exc})") from exc
    for value in (win.since, win.until):
        if value is not None and not math.isfinite(value):
            raise WindowError(f"time window: {win.text!r} is not a finite time")
    if win.since is not None and win.until is not None and win.until < win.since:
        raise WindowError(f"time window: {win.text!r} ends before it starts")
    return win


@dataclass
class _Found:
    since: float | None
    until: float | None
    text: str
    words: str  # what the operator wrote
    stream: bool = False


class _Scan:
    """Finds the window phrases one family at a time, blanking each one it takes."""

    def __init__(self, text: str, now: datetime, clock: bool, newest: datetime | None,
                 stream_end: float | None) -> None:
        self.orig = text
        self.text = text
        self.now = now
        self.clock = clock
        self.newest = newest if newest is None or newest <= now else now
        self.stream_end = stream_end
        self.spans: list[tuple[int, int]] = []

    def take(self, m: re.Match[str], group: int = 0) -> str:
        a, b = m.span(group)
        self.spans.append((a, b))
        self.text = self.text[:a] + " " * (b - a) + self.text[b:]
        return " ".join(self.orig[a:b].split())

    # ---- the whole window --------------------------------------------------------------

    def window(self) -> Window:
        m = _UNTIL_NOW.search(self.text)  # "since 22:00 until now": the open end, said
        if m is not None:
            self.take(m)
        m = _FUTURE.search(self.text)
        if m is not None:
            raise WindowError(f"time window: {m.group(0)!r} is in the future; questions are "
                              "about footage already seen")
        found = [f for f in (self._stream(), self._relative(), self._now()) if f is not None]
        day = self._day()
        tod = self._tod(day)
        if day is not None or tod is not None:
            found.append(self._day_and_time(day, tod))
        if len(found) > 1:
            raise WindowError(f"time window: cannot combine {found[0].words!r} with "
                              f"{found[1].words!r}; ask about one window")
        m = _LEFTOVER.search(self.text)
        if m is not None:
            got = f" (read {found[0].words!r} as {found[0].text!r})" if found else ""
            clockless = "" if self.clock else "; this footage has no wall clock"
            raise WindowError(f"time window: cannot read {_word_at(self.orig, m)!r}{got}"
                              f"{clockless}")
        if not found:
            return Window(None, None, "")
        f = found[0]
        spans = tuple(sorted(self.spans))
        hull = (spans[0][0], spans[-1][1]) if spans else (0, 0)
        return Window(f.since, f.until, f.text, hull, f.stream, spans)

    # ---- stream seconds ----------------------------------------------------------------

    def _stream(self) -> _Found | None:
        for pattern, kind in _STREAM:
            for m in pattern.finditer(self.text):
                found = self._stream_match(m, kind)
                if found is not None:
                    return found
        return None

    def _stream_match(self, m: re.Match[str], kind: str) -> _Found | None:
        suffix = m.group(m.re.groups)
        marked = suffix is not None or not self.clock
        if kind == "first1":
            length = {"second": 1.0, "minute": 60.0, "hour": 3600.0}[m.group(1)]
            words = self.take(m)
            return _Found(0.0, length, f"in the first {m.group(1)}", words, stream=True)
        raw = [m.group(1)] + ([m.group(2)] if kind == "between" else [])
        if not marked and not any(_stream_marked(r) for r in raw):
            return None
        if kind == "between":
            unit = _trailing_unit(raw[1]) or _trailing_unit(raw[0])
            a = _stream_seconds(raw[0], unit, self.clock)
            b = _stream_seconds(raw[1], unit, self.clock)
            words = self.take(m)
            if b < a:
                raise WindowError(f"time window: {_secs(b)} is before {_secs(a)} in {words!r}")
            return _Found(a, b, f"between {_secs(a)} and {_secs(b)}", words, stream=True)
        a = _stream_seconds(raw[0], None, self.clock)
        words = self.take(m)
        if kind == "after":
            return _Found(a, None, f"after {_secs(a)}", words, stream=True)
        return _Found(0.0, a, ("in the first " if kind == "first" else "before ") + _secs(a),
                      words, stream=True)

    # ---- relative to the newest footage ------------------------------------------------

    def _relative(self) -> _Found | None:
        m = _RELATIVE.search(self.text)
        if m is None:
            return None
        raw = m.group(1)
        n = 1.0 if raw is None else float(_NUM_WORDS.get(raw, raw))
        seconds = n * _UNITS[m.group(2)]
        unit = _UNIT_NAMES.get(m.group(2), m.group(2)) + ("s" if n != 1 else "")
        label = f"in the last {unit}" if raw in (None, "a", "an") else f"in the last {raw} {unit}"
        words = self.take(m)
        if m.group(3) is not None or not self.clock:  # "the last 10 s of the video"
            if self.stream_end is None:
                raise WindowError(f"time window: {words!r} needs the end of the footage, "
                                  "which is not known here")
            end_s = float(self.stream_end)
            return _Found(max(0.0, end_s - seconds), end_s, label + " of the footage", words,
                          stream=True)
        last = self.newest or self.now
        if self.newest is not None and (self.now - self.newest).total_seconds() > NOW_S:
            label += f" of footage (up to {_clock(self.newest, self.now)})"
        return _Found(last.timestamp() - seconds, last.timestamp(), label, words)

    def _now(self) -> _Found | None:
        """"Now" means the last minute: a person still in view has an event open until now."""
        m = _NOW.search(self.text)
        if m is None:
            return None
        words = self.take(m)
        if not self.clock:
            if self.stream_end is None:
                raise WindowError(f"time window: {words!r} needs the end of the footage")
            end = float(self.stream_end)
            return _Found(max(0.0, end - NOW_S), end, "at the end of the footage", words, True)
        return _Found(self.now.timestamp() - NOW_S, self.now.timestamp(), "right now", words)

    # ---- days and times of day ---------------------------------------------------------

    def _day(self) -> _Day | None:
        for pattern, kind in _DATES:
            m = pattern.search(self.text)
            if m is None:
                continue
            part = m.group(m.re.groups)  # the last group of every date pattern
            day, roll = self._resolve_day(m, kind)
            start = m.start()
            words = self.take(m)
            return _Day(day, part, roll, words, start)
        for pattern, offset, part in _PART_ALONE:
            m = pattern.search(self.text)
            if m is None:
                continue
            part = part or m.group(1)
            today = self.now.date()
            if offset is None:  # "in the evening": the latest one that has begun
                h0 = _PARTS[part][0]
                offset = 0 if _local(today, time(h0), self.now.tzinfo) <= self.now else -1
            elif part == "night" and offset == 0 and self.now.hour < 6:
                offset = -1  # "tonight" at 02:00 is the night that began yesterday
            words = self.take(m)
            return _Day(today + timedelta(days=offset), part, False, words, m.start())
        return None

    def _resolve_day(self, m: re.Match[str], kind: str) -> tuple[date, bool]:
        today = self.now.date()
        if kind in ("-2", "-1", "0"):
            return today + timedelta(days=int(kind)), False
        if kind == "weekday":
            which, wd = m.group(1), _WEEKDAYS[m.group(2)]
            back = (today.weekday() - wd) % 7
            if which in ("last", "past", "previous"):
                return today - timedelta(days=back or 7), False
            if which == "this":
                if wd > today.weekday():
                    raise WindowError(f"time window: {m.group(0).strip()!r} has not come yet")
                return today - timedelta(days=back), False
            return today - timedelta(days=back), True  # a future start rolls back a week
        y: int | None
        if kind == "iso":
            y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        elif kind == "dmy":
            d, mo = int(m.group(1)), _MONTHS[m.group(2)]
            y = int(m.group(3)) if m.group(3) else None
        else:
            mo, d = _MONTHS[m.group(1)], int(m.group(2))
            y = int(m.group(3)) if m.group(3) else None
        if y is not None:
            try:
                return date(y, mo, d), False
            except ValueError as exc:
                raise WindowError(f"time window: {m.group(0).strip()!r} is not a date") from exc
        for year in range(today.year, today.year - 9, -1):  # the latest one not to come
            try:
                day = date(year, mo, d)
            except ValueError:
                continue
            if day <= today:
                return day, False
        raise WindowError(f"time window: {m.group(0).strip()!r} is not a date")

    def _tod(self, day: _Day | None) -> _Tod | None:
        if not self.clock:
            return None
        m = _BETWEEN.search(self.text)
        if m is not None:
            a, b = parse_time_of_day(m.group(1)), parse_time_of_day(m.group(2))
            return _Tod("between", a, b, self.take(m))
        for pattern in (_AFTER, _BEFORE, _AROUND):
            m = pattern.search(self.text)
            if m is not None:
                word = {"since": "since", "from": "since", "past": "after", "until": "before",
                        "till": "before", "by": "before", "about": "around",
                        "at": "around"}.get(m.group(1), m.group(1))
                return _Tod(word, parse_time_of_day(m.group(2)), None, self.take(m))
        if day is not None:  # "since Friday": the day's start; "until Friday": its end
            m = _PREFIX.search(self.text[:day.start])
            if m is not None:
                word = {"from": "since", "till": "until", "by": "until"}.get(m.group(1),
                                                                              m.group(1))
                return _Tod(word, None, None, self.take(m))
        return None

    def _day_and_time(self, day: _Day | None, tod: _Tod | None) -> _Found:
        if day is not None and not self.clock:
            raise WindowError(f"time window: {day.words!r} needs a wall clock, and this "
                              "footage has none; ask in stream seconds ('after 45 s')")
        words = " ".join(w for w in (day and day.words, tod and tod.words) if w)
        if day is None:
            assert tod is not None
            return self._time_only(tod, words)
        if day.part is not None and tod is not None:
            raise WindowError(f"time window: cannot combine {day.words!r} with "
                              f"{tod.words!r}; ask about one window")
        found = self._on_day(day.day, day, tod, words)
        if found.since is not None and found.since > self.now.timestamp():
            if not day.roll or (tod is not None and tod.a is None):
                raise WindowError(f"time window: {words!r} has not begun yet (it is "
                                  f"{_clock(self.now, self.now)} now)")
            found = self._on_day(day.day - timedelta(days=7), day, tod, words)
        return found

    def _time_only(self, tod: _Tod, words: str) -> _Found:
        now, zone = self.now, self.now.tzinfo
        if tod.kind in ("since", "until", "after", "before") and tod.a is None:
            raise WindowError(f"time window: cannot read {words!r}")
        assert tod.a is not None
        start = _past(now, tod.a)
        label = _day_suffix(start.date(), now)
        if tod.kind == "between":
            assert tod.b is not None
            end = _local(start.date() + timedelta(days=tod.b <= tod.a), tod.b, zone)
            return _Found(start.timestamp(), end.timestamp(),
                          f"between {_fmt(tod.a)} and {_fmt(tod.b)}{label}", words)
        if tod.kind in ("after", "since"):
            return _Found(start.timestamp(), None, f"{tod.kind} {_fmt(tod.a)}{label}", words)
        if tod.kind == "before":
            day0 = _local(start.date(), time(0), zone)
            return _Found(day0.timestamp(), start.timestamp(), f"before {_fmt(tod.a)}{label}",
                          words)
        return _Found(start.timestamp() - AROUND_S, start.timestamp() + AROUND_S,
                      f"around {_fmt(tod.a)}{label}", words)

    def _on_day(self, d: date, day: _Day, tod: _Tod | None, words: str) -> _Found:
        zone, now = self.now.tzinfo, self.now.timestamp()
        s0 = _local(d, time(0), zone).timestamp()
        s1 = _local(d + timedelta(days=1), time(0), zone).timestamp()
        name = _day_name(d, self.now)
        if day.part is not None:
            h0, h1 = _PARTS[day.part]
            a = _local(d, time(h0), zone).timestamp()
            b = _local(d + timedelta(days=h1 // 24), time(h1 % 24), zone).timestamp()
            return _Found(a, min(b, now) if a <= now else b, _part_name(d, day.part, self.now),
                          words)
        if tod is None:
            return _Found(s0, min(s1, now) if s0 <= now else s1, name, words)
        at = None if tod.a is None else _local(d, tod.a, zone).timestamp()
        where = name
        if tod.kind == "between":
            assert tod.a is not None and tod.b is not None and at is not None
            end = _local(d + timedelta(days=tod.b <= tod.a), tod.b, zone).timestamp()
            return _Found(at, end, f"between {_fmt(tod.a)} and {_fmt(tod.b)} {where}", words)
        bare = _date_name(d, self.now)  # "before yesterday" would read as a day earlier
        if tod.kind == "since":
            return _Found(s0 if at is None else at, None,
                          f"since {bare}" if tod.a is None else
                          f"since {_fmt(tod.a)} {where}", words)
        if tod.kind == "after":
            if tod.a is None:
                return _Found(s1, None, f"after {bare}", words)
            assert at is not None
            return _Found(at, None if s1 > now else s1, f"after {_fmt(tod.a)} {where}", words)
        if tod.kind == "until":
            return _Found(None, s1, f"until the end of {bare}", words)
        if tod.kind == "before":
            if tod.a is None:
                return _Found(None, s0, f"before {bare}", words)
            assert at is not None
            return _Found(s0, at, f"before {_fmt(tod.a)} {where}", words)
        assert tod.a is not None and at is not None
        return _Found(at - AROUND_S, at + AROUND_S, f"around {_fmt(tod.a)} {where}", words)


@dataclass
class _Day:
    day: date
    part: str | None  # morning, afternoon, evening, night
    roll: bool  # a plain weekday: a start still to come means the week before
    words: str
    start: int  # where the day words began in the question


@dataclass
class _Tod:
    kind: str  # between, after, since, before, until, around
    a: time | None  # None: the day word itself ("since Friday")
    b: time | None
    words: str


def parse_time_of_day(token: str) -> time:
    tok = token.strip().replace(".", "").replace("o'clock", "").replace("oclock", "").strip()
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


def _local(day: date, tod: time, zone: tzinfo | None) -> datetime:
    """`day` at `tod` in `zone`: a time in the spring DST gap is the gap's end (the first
    instant the clock shows a later time), a repeated autumn time its first occurrence."""
    dt = datetime.combine(day, tod, tzinfo=zone)
    ts = dt.timestamp()
    if datetime.fromtimestamp(ts, zone).replace(tzinfo=None) == dt.replace(tzinfo=None):
        return datetime.fromtimestamp(ts, zone)
    lo, hi = int(dt.replace(fold=1).timestamp()), int(math.ceil(ts))  # the gap: lo < T <= hi
    off = datetime.fromtimestamp(hi, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == off:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, zone)


def _past(now: datetime, tod: time) -> datetime:
    """The most recent moment with this time of day that is not in the future."""
    at = _local(now.date(), tod, now.tzinfo)
    return at if at <= now else _local(now.date() - timedelta(days=1), tod, now.tzinfo)


def _fmt(tod: time) -> str:
    return tod.strftime("%H:%M")


def _day_suffix(day: date, now: datetime) -> str:
    """" yesterday" when a time of day had to be read on the previous day."""
    return " yesterday" if day < now.date() else ""


def _day_name(day: date, now: datetime) -> str:
    if day == now.date():
        return "today"
    if day == now.date() - timedelta(days=1):
        return "yesterday"
    return f"on {_date_name(day, now)}"


def _date_name(day: date, now: datetime) -> str:
    return f"{day:%a} {day.day} {day:%b}" + (f" {day.year}" if day.year != now.year else "")


def _part_name(day: date, part: str, now: datetime) -> str:
    name = _day_name(day, now)
    if name == "today":
        return "tonight" if part == "night" else f"this {part}"
    if name == "yesterday":
        return "last night" if part == "night" else f"yesterday {part}"
    return f"on the night of {_date_name(day, now)}" if part == "night" else f"{name} {part}"


def _clock(at: datetime, now: datetime) -> str:
    return at.strftime("%H:%M" if at.date() == now.date() else "%a %d %b %H:%M")


def _secs(value: float) -> str:
    return f"{value:g} s"


def _stream_marked(raw: str) -> bool:
    return raw.lstrip().startswith("t") or _trailing_unit(raw) is not None


def _trailing_unit(raw: str) -> str | None:
    m = re.search(r"([a-z]+)\s*$", raw)
    return None if m is None or raw.strip().startswith("t") and m.start() == 0 else m.group(1)


def _unit_seconds(unit: str) -> float:
    if unit.startswith("s"):
        return 1.0
    if unit.startswith("m"):
        return 60.0
    return 3600.0


def _stream_seconds(raw: str, unit: str | None, clock: bool) -> float:
    """Seconds of stream time in one value: "30", "30 s", "1 min 30 s", "1:30", "t=90"."""
    tok = re.sub(r"^t\s*=\s*", "", raw.strip())
    m = re.fullmatch(rf"({_SCLK})\s*([a-z]+)?", tok)
    if m is not None:
        parts = [int(p) for p in m.group(1).split(":")]
        if any(p > 59 for p in parts[1:]):
            raise WindowError(f"time window: {raw.strip()!r} is not a stream time (m:ss)")
        if len(parts) == 3:
            return float(parts[0] * 3600 + parts[1] * 60 + parts[2])
        scale = 3600 if m.group(2) and m.group(2).startswith("h") else 60
        return float(parts[0] * scale + parts[1] * scale / 60)
    total, found = 0.0, False
    for num, u in re.findall(rf"({_SNUM})\s*([a-z]*)", tok):
        found = True
        u = u or unit
        if u is None:
            if not clock:
                raise WindowError(f"time window: {raw.strip()!r} needs a unit (s or min)")
            u = "s"  # t=90: seconds
        total += float(num) * _unit_seconds(u)
    if not found:
        raise WindowError(f"time window: cannot read {raw.strip()!r}")
    return total


def _word_at(text: str, m: re.Match[str]) -> str:
    """The leftover match widened to whole words, for the error."""
    a, b = m.span()
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    while b < len(text) and not text[b].isspace():
        b += 1
    return text[a:b].strip()


def resolve_tz(tz: tzinfo | str | None) -> tzinfo:
    """A tzinfo from a name ("Europe/Paris"), a tzinfo, or None (UTC)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"tz: unknown time zone {tz!r}") from exc
