"""Clips: any recorded interval of a camera as one playable MP4, cut at keyframes by
remuxing the segments (never re-encoded).

`write_clip` starts at the last keyframe at or before `start` (so the first frame
decodes) and stops before the first packet at or after `end`; the clip's timestamps
start at 0, and `ClipInfo.wall_start` says which moment that is (the API sends it as
`X-Clip-Start`). The output is a regular MP4 with its index first (`faststart`: browsers
play it while it downloads); QuickTime for codecs MP4 cannot carry. It validates
nothing about where the request came from: callers check the times and the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.record.layout import list_segments, overlapping
from pipeline.validation import InputError

MAX_CLIP_S = 3600.0  # one clip at most this long (an hour of remuxed video)
MEDIA_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime"}


POINT_S = 1.0  # a moment shorter than this gets the camera's record.pre_s/post_s around it


def clip_url(cfg: Any, camera: str, start: float, end: float) -> str | None:
    """`/clips/<camera>?start=&end=` (the API's path) for the footage of an interval or
    alert, or None when the camera does not record. An interval's clip is the interval
    itself; a moment (an alert, a point event) gets `record.pre_s` before and
    `record.post_s` after it."""
    record = cfg.camera(camera).record
    if not record.enabled:
        return None
    if end - start < POINT_S:
        start, end = start - record.pre_s, max(end, start) + record.post_s
    return f"/clips/{camera}?start={start:.3f}&end={end:.3f}"


def alert_clip_url(cfg: Any, alert: Any) -> str | None:
    """The clip around an alert's moment (what every alert payload links)."""
    return clip_url(cfg, alert.camera, alert.wall_time, alert.wall_time)


class ClipNotFound(LookupError):
    """No recorded footage in the interval (field `start`)."""

    field = "start"


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    wall_start: float  # epoch seconds of time 0 in the clip (its first keyframe)
    wall_end: float  # the end of its last frame
    frames: int
    media_type: str


def parse_moment(field: str, value: str) -> float:
    """Epoch seconds or ISO-8601 (naive times are UTC, as the CLI reads them)."""
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(field, value, "expected epoch seconds or an ISO-8601 "
                             "time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(number):
        raise InputError(field, value, "expected a finite number of epoch seconds")
    return number


def check_interval(start: float, end: float) -> None:
    """The one check of a clip request's times (API and CLI): InputError naming `end`."""
    if end <= start:
        raise InputError("end", end, f"must be after start ({start})")
    if end - start > MAX_CLIP_S:
        raise InputError("end", end, f"a clip is at most {MAX_CLIP_S:g} s long "
                         f"(start {start})")


def clip_suffix(folder: Path, start: float, end: float) -> str:
    """The container of a clip of this interval: that of its first segment."""
    segments = overlapping(list_segments(folder), start, end)
    if not segments:
        raise ClipNotFound(f"start: no recording of this camera between {_iso(start)} "
                           f"and {_iso(end)}; got {start!r}")
    return segments[0].path.suffix


def write_clip(folder: Path, start: float, end: float, out: Path) -> ClipInfo:
    """Remux the footage of [start, end) (epoch seconds) from `folder`'s segments to
    `out`, whose suffix (.mp4 or .mov) should come from `clip_suffix`."""
    import av

    assert end > start, "callers refuse empty intervals"
    segments = overlapping(list_segments(folder), start, end)
    if not segments:
        raise ClipNotFound(f"start: no recording of this camera between {_iso(start)} "
                           f"and {_iso(end)}; got {start!r}")
    fmt = "mp4" if out.suffix == ".mp4" else "mov"
    writer = _ClipWriter(av.open(str(out), "w", format=fmt, options={
        "movflags": "+faststart"}), start, end)
    try:
        for seg in segments:
            with av.open(str(seg.path)) as inp:
                writer.add_segment(inp, seg.wall_start)
            if writer.done:
                break
        writer.flush()
    finally:
        writer.container.close()
    if writer.frames == 0:
        out.unlink(missing_ok=True)
        raise ClipNotFound(f"start: the recording has no decodable footage between "
                           f"{_iso(start)} and {_iso(end)}; got {start!r}")
    return ClipInfo(out, writer.wall_start, writer.wall_end, writer.frames,
                    MEDIA_TYPES.get(out.suffix, "video/mp4"))


class _ClipWriter:
    """Packets in decode order -> the clip, starting at a keyframe at or before start."""

    def __init__(self, container, start: float, end: float) -> None:  # noqa: ANN001
        self.container, self.start, self.end = container, start, end
        self.stream = None
        self.base_wall: float | None = None  # wall time of the clip's 0
        self.wall_start = self.wall_end = 0.0
        self.frames = 0
        self.done = False
        self._gop: list[tuple[object, float]] = []  # waiting: the GOP holding `start`
        self._last_dts: float | None = None

    def add_segment(self, inp, seg_wall: float) -> None:  # noqa: ANN001
        src = inp.streams.video[0]
        if self.stream is None:
            self.stream = self.container.add_stream_from_template(src, opaque=True)
        tb = src.time_base
        for packet in inp.demux(src):
            if packet.pts is None or not packet.size:
                continue
            wall = seg_wall + float(packet.pts * tb)
            dts_wall = seg_wall + float((packet.dts if packet.dts is not None
                                         else packet.pts) * tb)
            if dts_wall >= self.end:
                self.done = True
                return
            if self.base_wall is None and wall <= self.start:
                if packet.is_keyframe:
                    self._gop = []  # a later keyframe still at or before start
                self._gop.append((packet, wall))
                continue
            if self.base_wall is None and not self._gop and not packet.is_keyframe:
                continue  # the interval starts between segments: wait for a keyframe
            for held, held_wall in self._gop:
                self._mux(held, held_wall, tb)
            self._gop = []
            self._mux(packet, wall, tb)

    def flush(self) -> None:
        """The interval starts after the last keyframe recorded: its GOP is the clip."""
        for held, held_wall in self._gop:
            self._mux(held, held_wall, held.time_base)
        self._gop = []

    def _mux(self, packet, wall: float, tb) -> None:  # noqa: ANN001
        if self.base_wall is None:
            self.base_wall = self.wall_start = wall
        dts_wall = wall - float((packet.pts - (packet.dts if packet.dts is not None
                                                 else packet.pts)) * tb)
        dts = round((dts_wall - self.base_wall) / tb)
        if self._last_dts is not None and dts <= self._last_dts:
            return  # overlapping segments (a restart): the packet is in already
        packet.pts = round((wall - self.base_wall) / tb)
        packet.dts = dts
        packet.stream = self.stream
        self.container.mux(packet)
        self._last_dts = dts
        self.frames += 1
        self.wall_end = max(self.wall_end, wall + float((packet.duration or 0) * tb))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
