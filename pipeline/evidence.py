"""Evidence files and readable times: thumbnails under the data dir, wall-clock formatting.

Owns the layout `<data_dir>/thumbnails/<camera>/<name>.jpg` (paths stored in rows are
relative to the data dir, so the API can serve them and a moved data dir still works)
and the one time format operators read: `2026-11-23 22:14:05 UTC (t=20.0s)`. It does not
draw thumbnails (model/cv/thumbnails.py does) and does not serve them (pipeline/api).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SAFE = re.compile(r"[^a-z0-9_.-]+")


def thumbnail_relpath(camera: str, name: str) -> str:
    """Relative path of a thumbnail; `name` is sanitised so it can never leave the folder."""
    safe = _SAFE.sub("_", name.lower()).strip("._") or "thumb"
    return f"thumbnails/{camera}/{safe}.jpg"


def save_thumbnail(data_dir: Path, camera: str, name: str, jpeg: bytes | None) -> str | None:
    """Write a JPEG atomically (temp name then rename); returns the relative path or None."""
    if not jpeg:
        return None
    rel = thumbnail_relpath(camera, name)
    path = Path(data_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(jpeg)
    os.replace(tmp, path)
    return rel


def freeze_thumbnail(data_dir: Path, camera: str, rel: str | None, name: str) -> str | None:
    """A copy of the thumbnail `rel` under `name`, written once: an event's thumbnail is
    re-rendered while the event lasts (its best frame), an alert's snapshot must keep
    showing the moment it fired. Returns the copy's relative path, or `rel` itself when
    that file is not here (written on another node) or the copy fails."""
    if not rel:
        return rel
    out = thumbnail_relpath(camera, name)
    try:
        if (Path(data_dir) / out).exists():  # written when the alert first fired
            return out
        return save_thumbnail(data_dir, camera, name, (Path(data_dir) / rel).read_bytes()) or rel
    except OSError:
        return rel


def camera_zone(tz: str | None):
    """The camera's time zone; UTC when unset or unknown."""
    if not tz or tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_wall(wall: float, t: float | None = None, tz: str | None = "UTC") -> str:
    """`2026-11-23 22:14:05 UTC (t=20.0s)`: wall clock in the camera's zone plus stream time."""
    moment = datetime.fromtimestamp(wall, tz=camera_zone(tz))
    text = f"{moment:%Y-%m-%d %H:%M:%S} {moment.tzname() or 'UTC'}"
    return text if t is None else f"{text} (t={t:.1f}s)"


def format_span(wall_start: float, wall_end: float, t_start: float, t_end: float,
                tz: str | None = "UTC") -> str:
    start = format_wall(wall_start, t_start, tz)
    if abs(t_end - t_start) < 0.05:
        return start
    return f"{start} to {format_wall(wall_end, t_end, tz)}"
