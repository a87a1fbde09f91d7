"""SegmentWriter: one camera's packets -> fragmented MP4 segment files, no re-encoding.

Runs on the recorder's thread only. A segment starts at a keyframe, ends at the first
keyframe after `segment_s`, at a new connection, or where the stream's times jump (a
re-anchored live clock, a gap), so every file is decodable from its first packet and its
name's wall time maps its timestamps exactly. Disk errors close the segment, are
counted and raised to the caller as `RecordingError`; the next keyframe tries again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline.record.layout import finish, partial_path
from pipeline.record.packets import PacketRecord, StreamTemplate

log = logging.getLogger(__name__)
JUMP_S = 1.0  # a packet this far from where its segment's timestamps put it starts anew
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class RecordingError(RuntimeError):
    """Writing a segment failed (disk full, permissions, the muxer refused a packet)."""


@dataclass
class _Open:
    container: object
    stream: object
    partial: Path
    wall_start: float  # wall time of `base` (the first packet's dts): time 0 in the file
    base: int  # the first packet's dts, in time_base ticks
    last_dts: int
    end: int  # pts + duration of the latest packet, relative to base
    time_base: object
    connection: int


class SegmentWriter:
    def __init__(self, folder: Path, segment_s: float) -> None:
        self.folder = Path(folder)
        self.segment_s = segment_s
        self.template: StreamTemplate | None = None
        self.segments_written = 0
        self.bytes_written = 0
        self.packets_skipped = 0  # waiting for a keyframe (start, after a gap or an error)
        # footage before this wall time is recorded already (a restarted camera re-reading
        # its file): no second copy of it
        self.skip_before = float("-inf")
        self._seg: _Open | None = None

    @property
    def is_open(self) -> bool:
        return self._seg is not None

    def use(self, template: StreamTemplate) -> None:
        """A new connection: its packets go to new segments made from `template`."""
        self.close()
        self.template = template

    def write(self, pkt: PacketRecord) -> None:
        seg = self._seg
        if seg is not None and self._must_cut(seg, pkt):
            self.close()
            seg = None
        if seg is None:
            if not pkt.keyframe or self.template is None or (
                    pkt.connection != self.template.connection) or (
                    pkt.dts_wall < self.skip_before - 1e-3):
                self.packets_skipped += 1
                return
            seg = self._open(pkt)
        self._mux(seg, pkt)

    def _must_cut(self, seg: _Open, pkt: PacketRecord) -> bool:
        if pkt.connection != seg.connection:
            return True
        expected = seg.wall_start + float((pkt.pts - seg.base) * seg.time_base)
        if abs(pkt.wall - expected) > JUMP_S or pkt.dts <= seg.last_dts:
            return True  # times jumped or went back: keep the name's clock exact
        return pkt.keyframe and pkt.wall - seg.wall_start >= self.segment_s

    def _open(self, pkt: PacketRecord) -> _Open:
        import av

        assert self.template is not None
        wall_start = pkt.dts_wall
        partial = partial_path(self.folder, wall_start, self.template.suffix)
        fmt = "mp4" if self.template.suffix == ".mp4" else "mov"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            container = av.open(str(partial), "w", format=fmt, options=FRAGMENTED)
            stream = container.add_stream_from_template(self.template.stream, opaque=True)
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise RecordingError(f"cannot start segment {partial}: {exc}") from None
        self._seg = _Open(container, stream, partial, wall_start, pkt.dts, pkt.dts - 1, 0,
                          pkt.time_base, pkt.connection)
        return self._seg

    def _mux(self, seg: _Open, pkt: PacketRecord) -> None:
        import av

        out = av.Packet(pkt.data)
        out.pts, out.dts = pkt.pts - seg.base, pkt.dts - seg.base
        out.duration, out.time_base = pkt.duration, pkt.time_base
        out.is_keyframe = pkt.keyframe
        out.stream = seg.stream
        try:
            seg.container.mux(out)
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            self._abandon(seg)
            raise RecordingError(f"writing {seg.partial.name}: {exc}") from None
        seg.last_dts = pkt.dts
        seg.end = max(seg.end, pkt.pts - seg.base + pkt.duration)
        self.bytes_written += len(pkt.data)

    def close(self) -> Path | None:
        """End the open segment: close the file and give it its listed name."""
        seg, self._seg = self._seg, None
        if seg is None:
            return None
        import av

        try:
            seg.container.close()
            final = finish(seg.partial, seg.wall_start, float(seg.end * seg.time_base))
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            with contextlib.suppress(OSError):
                seg.partial.unlink(missing_ok=True)
            raise RecordingError(f"closing {seg.partial.name}: {exc}") from None
        self.segments_written += 1
        return final

    def _abandon(self, seg: _Open) -> None:
        self._seg = None
        try:
            seg.container.close()
        except Exception:  # noqa: BLE001 - the write already failed; keep what is on disk
            log.debug("closing a failed segment %s also failed", seg.partial, exc_info=True)
