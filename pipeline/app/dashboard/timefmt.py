"""Readable times for the dashboard: "Tue 14:03:21" in the camera's time zone, and
"2 min ago". The page's script (static/app.js, `localTime` and `relativeTime`) renders
the same text from the same epoch seconds, so the server's first paint and the script's
refresh agree. Owns formatting only; the time zone is the camera's (the config's).
"""

from __future__ import annotations

import datetime as dt
import time

from pipeline.evidence import camera_zone

WEEK_S = 6 * 86400  # older (or later) than this: the date is shown too


def local_time(epoch: float | None, tz: str | None = "UTC", now: float | None = None) -> str:
    """`Tue 14:03:21`; `Tue 25 Nov 14:03:21` when more than six days away from now."""
    if epoch is None:
        return "—"
    moment = dt.datetime.fromtimestamp(epoch, camera_zone(tz))
    now = time.time() if now is None else now
    if abs(now - epoch) > WEEK_S:
        return f"{moment:%a} {moment.day} {moment:%b %H:%M:%S}"
    return f"{moment:%a %H:%M:%S}"


def relative_time(epoch: float | None, now: float | None = None) -> str:
    """`just now`, `42 s ago`, `2 min ago`, `3 h ago`, `4 d ago` (or `in ...`)."""
    if epoch is None:
        return ""
    delta = (time.time() if now is None else now) - epoch
    ahead, delta = delta < 0, abs(delta)
    if delta < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if delta >= size:
            text = f"{int(delta // size)} {unit}"
            break
    return f"in {text}" if ahead else f"{text} ago"


def iso_utc(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
