"""Frames read back from a camera's recording at given moments: what a chunk whose fine
KV is gone is prefilled again from (pipeline.memory.redense).

`frames_at(folder, moments, convert)` decodes the segments that overlap the moments
(seeking in each to the keyframe at or before the first moment it holds) and gives, for
each moment (epoch seconds, ascending), `convert(frame)` of the first frame at or after
it, as the ingest sampler's grid keeps the first frame at or after each grid point; None
where the recording has no frame within `tolerance_s` of it (a gap, a camera that was
not recording, segments deleted by retention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pipeline.record.layout import list_segments, overlapping

T = TypeVar("T")
TOLERANCE_S = 0.5  # a frame further than this past its moment is not that moment's
EPS_S = 1e-3  # stream times are rationals: a frame a hair before its moment is its


def frames_at(folder: Path, moments: Sequence[float], convert: Callable[[Any], T],
              tolerance_s: float = TOLERANCE_S, keyframes_only: bool | None = False,
              interval: float | None = None) -> list[T | None]:
    """`keyframes_only` as the camera's ingest decoded (pipeline.ingest.reader): True,
    False, or None for its auto rule (keyframes only where the segment's keyframes are
    at most `interval` apart), so the frames read back are the ones ingest kept."""
    import av

    out: list[T | None] = [None] * len(moments)
    if not moments:
        return out
    if any(b < a for a, b in zip(moments, moments[1:], strict=False)):
        raise ValueError("moments must be ascending")
    i = 0
    for seg in overlapping(list_segments(folder), moments[0] - EPS_S,
                           moments[-1] + tolerance_s):
        while i < len(moments) and moments[i] + tolerance_s < seg.wall_start:
            i += 1  # before this segment and after the previous one: not recorded
        if i >= len(moments):
            break
        try:
            key_only = keyframes_only
            if key_only is None:
                key_only = interval is not None and _keyframe_gap(seg.path) <= interval + 1e-6
            with av.open(str(seg.path)) as inp:
                i = _decode_segment(inp, seg.wall_start, moments, i, out, convert,
                                    tolerance_s, key_only)
        except (av.FFmpegError, OSError):  # a segment deleted or damaged meanwhile
            continue
    return out


def _keyframe_gap(path: Path) -> float:
    """The longest gap between keyframes of a segment (packets only, nothing decoded);
    infinite with fewer than two."""
    import av

    times = []
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        for packet in inp.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                times.append(float(packet.pts * stream.time_base))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(gaps) if gaps else float("inf")


def _decode_segment(inp: Any, seg_wall: float, moments: Sequence[float], i: int,
                    out: list, convert: Callable[[Any], Any], tolerance_s: float,
                    keyframes_only: bool) -> int:
    stream = inp.streams.video[0]
    tb = stream.time_base
    rel = moments[i] - seg_wall
    if rel > 0:
        inp.seek(int(rel / tb), stream=stream, backward=True, any_frame=False)
    for packet in inp.demux(stream):
        if packet.size and keyframes_only and not packet.is_keyframe:
            continue  # as the reader: the decoder sees keyframes only
        for frame in packet.decode():
            if frame.pts is None:
                continue
            wall = seg_wall + float(frame.pts * tb)
            while i < len(moments) and wall >= moments[i] - EPS_S:
                if wall - moments[i] <= tolerance_s:
                    out[i] = convert(frame)
                i += 1
            if i >= len(moments):
                return i
    return i
