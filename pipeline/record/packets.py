"""What the ingest reader hands the recorder: a packet's bytes and times, and the codec
template of a connection. Plain records, so the writer thread never touches the reader's
container (which a reconnect closes while packets still wait to be written)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True, eq=False)
class PacketRecord:
    data: bytes
    pts: int
    dts: int
    duration: int
    time_base: Fraction
    keyframe: bool
    wall: float  # epoch seconds of the packet's pts on the camera's timeline
    connection: int  # which reader connection it came from

    @property
    def dts_wall(self) -> float:
        return self.wall - float((self.pts - self.dts) * self.time_base)


@dataclass(frozen=True, eq=False)
class StreamTemplate:
    """A copy of the input stream's codec parameters, owned by a muxer that never writes:
    what each segment's stream is made from. `suffix`: .mp4, or .mov for codecs the MP4
    muxer refuses (e.g. MS-MPEG-4 in old AVI files)."""

    holder: Any  # av OutputContainer on a BytesIO: keeps `stream` alive
    stream: Any
    suffix: str
    connection: int


def stream_template(stream: Any, connection: int) -> StreamTemplate:
    """On the reader thread, while its container is open (microseconds, no I/O)."""
    import av

    for fmt, suffix in (("mp4", ".mp4"), ("mov", ".mov")):
        holder = av.open(io.BytesIO(), "w", format=fmt)
        try:
            copy = holder.add_stream_from_template(stream, opaque=True)
        except ValueError:  # this container cannot carry the codec
            holder.close()
            continue
        return StreamTemplate(holder, copy, suffix, connection)
    raise ValueError(f"codec {stream.codec_context.name!r}: neither MP4 nor QuickTime "
                     "can carry it; not recorded")


def packet_record(packet: Any, wall: float, connection: int) -> PacketRecord:
    pts = int(packet.pts)
    dts = int(packet.dts) if packet.dts is not None else pts
    return PacketRecord(bytes(packet), pts, dts, int(packet.duration or 0),
                        Fraction(packet.time_base), bool(packet.is_keyframe), wall, connection)
