"""Where a camera's recording lives and which segments retention deletes.

Layout: `<data_dir>/recordings/<camera>/<wall_start_ms>-<duration_ms>.<mp4|mov>`, one
self-contained fragmented MP4 (QuickTime for codecs MP4 cannot carry) per segment,
starting at a keyframe, with timestamps from 0 at the segment's start. The name is the
index: no side file to keep in step, and a segment is listed only once it is complete
(`.part` while it is written; `recover_partial` finishes those a crash left behind).
`retention_plan` is a pure function of the listing. Nothing here muxes or decodes
packets except `recover_partial`, which reads a partial file's last timestamp.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIXES = (".mp4", ".mov")
PARTIAL = ".part"
_NAME_RE = re.compile(r"^(\d{10,16})-(\d{1,10})\.(mp4|mov)$")


@dataclass(frozen=True)
class Segment:
    path: Path
    wall_start: float  # epoch seconds of the segment's first packet (time 0 in the file)
    wall_end: float
    size: int  # bytes

    @property
    def duration(self) -> float:
        return self.wall_end - self.wall_start


def camera_dir(data_dir: Path, camera: str) -> Path:
    return Path(data_dir) / "recordings" / camera


def segment_name(wall_start: float, duration: float, suffix: str) -> str:
    return f"{round(wall_start * 1000):013d}-{max(0, round(duration * 1000))}{suffix}"


def parse_name(path: Path) -> tuple[float, float] | None:
    """(wall_start, wall_end) from a finished segment's name; None for anything else."""
    m = _NAME_RE.match(path.name)
    if m is None:
        return None
    start = int(m[1]) / 1000
    return start, start + int(m[2]) / 1000


def list_segments(folder: Path) -> list[Segment]:
    """The camera's finished segments, oldest first (files vanishing meanwhile skipped)."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        span = parse_name(Path(entry.name))
        if span is None:
            continue
        try:
            size = entry.stat().st_size
        except FileNotFoundError:
            continue
        out.append(Segment(Path(entry.path), span[0], span[1], size))
    return sorted(out, key=lambda s: s.wall_start)


def overlapping(segments: list[Segment], start: float, end: float) -> list[Segment]:
    return [s for s in segments if s.wall_end > start and s.wall_start < end]


def retention_plan(segments: list[Segment], now: float, retain_days: float,
                   max_bytes: int) -> list[Segment]:
    """The segments to delete: every one that ended more than `retain_days` ago, then the
    oldest of the rest until the remaining ones fit in `max_bytes`."""
    cutoff = now - retain_days * 86400.0
    ordered = sorted(segments, key=lambda s: s.wall_start)
    doomed = [s for s in ordered if s.wall_end < cutoff]
    kept = [s for s in ordered if s.wall_end >= cutoff]
    total = sum(s.size for s in kept)
    for seg in kept:
        if total <= max_bytes:
            break
        doomed.append(seg)
        total -= seg.size
    return doomed


def partial_path(folder: Path, wall_start: float, suffix: str) -> Path:
    return folder / f"{round(wall_start * 1000):013d}{suffix}{PARTIAL}"


def finish(partial: Path, wall_start: float, duration: float) -> Path:
    """Rename a written segment to its final, listed name."""
    suffix = Path(partial.name.removesuffix(PARTIAL)).suffix
    final = partial.with_name(segment_name(wall_start, duration, suffix))
    os.replace(partial, final)
    return final


def recover_partial(folder: Path) -> list[Path]:
    """Segments a crash left as `.part`: fragmented MP4 stays readable up to its last
    complete fragment, so read how long it is and give it its final name; an unreadable
    or empty one is deleted. Returns the recovered paths."""
    import av

    out = []
    for partial in sorted(Path(folder).glob(f"*{PARTIAL}")):
        stem = partial.name.removesuffix(PARTIAL)
        try:
            wall_start = int(Path(stem).stem) / 1000
            with av.open(str(partial)) as container:
                stream = container.streams.video[0]
                last = max((float(p.pts * p.time_base) for p in container.demux(stream)
                            if p.pts is not None), default=None)
        except (ValueError, OSError, av.error.FFmpegError, IndexError) as exc:
            log.warning("recording %s: unreadable partial segment removed (%s)", partial, exc)
            partial.unlink(missing_ok=True)
            continue
        if last is None:
            partial.unlink(missing_ok=True)
            continue
        out.append(finish(partial, wall_start, last))
    return out
