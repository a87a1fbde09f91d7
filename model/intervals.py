"""Time intervals mentioned in a model answer, in stream seconds.

Owns: `parse_intervals(text)`, a pure function that finds ranges ("from 12.0 to 20.5
seconds", "12s-20s", "between 1:02 and 1:10") and instants ("at 31 s", "Time 31.0s",
"around 0:45") and returns them as (start, end) pairs in order of appearance, instants as
(t, t). A bare number is a time only with a unit, a clock format (m:ss, h:mm:ss) or a
preceding "at/around/about", so "2 people" is not a time.

Does not: map stream seconds to wall-clock time (the caller knows the camera's origin).
"""

from __future__ import annotations

import re

_TIME = r"\d+:\d{1,2}(?::\d{1,2})?(?:\.\d+)?|\d+(?:\.\d+)?"
_UNIT = r"seconds|second|secs|sec|s|minutes|minute|mins|min"
_RANGE = re.compile(
    rf"(?:(?P<between>between)\s+)?(?:from\s+)?(?P<a>{_TIME})\s*(?P<ua>(?:{_UNIT})\b)?\s*"
    rf"(?P<conn>to|and|until|till|through|-|–|—)\s*(?P<b>{_TIME})\s*(?P<ub>(?:{_UNIT})\b)?",
    re.IGNORECASE)
_POINT = re.compile(
    rf"(?P<pre>\b(?:at|around|about|approximately|near)\s+)?(?P<t>{_TIME})\s*"
    rf"(?P<u>(?:{_UNIT})\b)?", re.IGNORECASE)


def _seconds(value: str, unit: str | None) -> float:
    if ":" in value:
        parts = [float(p) for p in value.split(":")]
        total = 0.0
        for p in parts:
            total = total * 60 + p
        return total
    scale = 60.0 if unit and unit.lower().startswith("min") else 1.0
    return float(value) * scale


def _is_time(value: str, unit: str | None, pre: bool) -> bool:
    return bool(unit) or ":" in value or pre


def parse_intervals(text: str) -> list[tuple[float, float]]:
    """All (start, end) intervals in `text`, in order of appearance, duplicates removed."""
    found: list[tuple[int, tuple[float, float]]] = []
    taken: list[tuple[int, int]] = []
    for m in _RANGE.finditer(text):
        a, b, ua, ub = m["a"], m["b"], m["ua"], m["ub"]
        if m["conn"].lower() == "and" and not m["between"]:
            continue
        if not (ua or ub or ":" in a or ":" in b):
            continue
        start, end = _seconds(a, ua or ub), _seconds(b, ub or ua)
        found.append((m.start(), (min(start, end), max(start, end))))
        taken.append(m.span())
    for m in _POINT.finditer(text):
        if any(s <= m.start("t") < e for s, e in taken):
            continue
        if _is_time(m["t"], m["u"], bool(m["pre"])):
            t = _seconds(m["t"], m["u"])
            found.append((m.start(), (t, t)))
    out: list[tuple[float, float]] = []
    for _pos, iv in sorted(found):
        if iv not in out:
            out.append(iv)
    return out
