"""StreamReader: opens a file or an rtsp:// / rtsps:// URL with PyAV and yields frames.

Owns opening (transport, timeouts, clear errors), demuxing, decoding (optionally only
keyframes), counting, stream info, stamping each frame with a non-decreasing time
(see timeline.py), and handing every demuxed packet to the camera's recorder, if any. It does not sample, resize, reconnect or queue: the sampler and the
supervisor do. No Ray here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av

from pipeline.ingest.errors import (
    SUPPORTED_SCHEMES,
    StreamOpenError,
    StreamReadError,
    StreamStalledError,
    UnsupportedSchemeError,
    describe,
    mask_url,
)
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.timeline import Timeline

log = logging.getLogger(__name__)
MAX_CORRUPT_IN_A_ROW = 50  # undecodable packets in a row before the stream counts as broken


@dataclass(frozen=True)
class StreamInfo:
    url: str  # masked
    live: bool
    codec: str
    width: int
    height: int
    native_fps: float | None


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    t: float  # seconds since the camera's origin, non-decreasing
    frame: av.VideoFrame  # converted only if the sampler keeps it
    keyframe: bool


def is_live(url: str) -> bool:
    return urlsplit(url).scheme.lower() in SUPPORTED_SCHEMES


def resolve_source(camera: str, url: str) -> str:
    """Validate the URL; return what PyAV should open. Raise naming camera and cause."""
    if not url:
        raise UnsupportedSchemeError(camera, url, "empty URL")
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in SUPPORTED_SCHEMES:
        return url
    if scheme not in ("", "file"):
        raise UnsupportedSchemeError(
            camera, url, f"unsupported scheme {scheme!r} (use a file path, rtsp:// or rtsps://)"
        )
    path = Path(urlsplit(url).path if scheme == "file" else url)
    if not path.exists():
        raise StreamOpenError(camera, url, "file not found")
    if not path.is_file():
        raise StreamOpenError(camera, url, "not a regular file")
    if path.stat().st_size == 0:
        raise StreamOpenError(camera, url, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise StreamOpenError(camera, url, "file not readable (permission denied)")
    return str(path)


class StreamReader:
    """One connection to one stream. Use as a context manager; iterate `frames()`."""

    def __init__(
        self,
        url: str,
        options: IngestOptions | None = None,
        camera: str = "probe",
        timeline: Timeline | None = None,
        recorder: Any = None,
    ) -> None:
        """`recorder`: a CameraRecorder (pipeline/record) or None; it is handed the video
        stream at each open and every demuxed packet, from this same demux."""
        self.url = url
        self.camera = camera
        self.options = options or IngestOptions()
        self.live = is_live(url)
        self.timeline = timeline or Timeline(self.live, self.options.max_clock_skew)
        self.info: StreamInfo | None = None
        self.frames_decoded = 0
        self.packets_read = 0
        self.corrupt_packets = 0
        self.keyframe_interval: float | None = None  # largest gap seen between keyframes
        self.keyframes_only = bool(self.options.keyframe_only)
        self._key_times: list[float] = []
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._recorder = recorder
        self._packet_sink: Any = None

    # lifecycle -------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        source = resolve_source(self.camera, self.url)
        opts: dict[str, str] = {}
        if self.live:
            opts["rtsp_transport"] = self.options.transport
        started = time.monotonic()
        try:
            container = av.open(
                source,
                options=opts,
                timeout=(self.options.open_timeout, self.options.read_timeout),
            )
        except (av.error.FFmpegError, OSError) as exc:
            cause = describe(exc)
            waited = time.monotonic() - started
            if isinstance(exc, av.error.ExitError) or waited >= self.options.open_timeout - 0.05:
                # PyAV's timeout interrupts FFmpeg, which then reports a generic error
                cause = f"timed out: no answer within {self.options.open_timeout:.1f} s"
            raise StreamOpenError(self.camera, self.url, cause) from None
        if not container.streams.video:
            container.close()
            raise StreamOpenError(self.camera, self.url, "no video stream in the input")
        stream = container.streams.video[0]
        stream.thread_count = self.options.decode_threads
        stream.thread_type = "AUTO" if self.options.decode_threads != 1 else "SLICE"
        rate = stream.average_rate or stream.guessed_rate
        ctx = stream.codec_context
        self.info = StreamInfo(
            url=mask_url(self.url),
            live=self.live,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            native_fps=float(rate) if rate else None,
        )
        if self.info.native_fps:
            self.timeline.step = 1.0 / self.info.native_fps
        self._container, self._stream = container, stream
        if self._recorder is not None:
            self._packet_sink = self._recorder.begin(stream)
        return self.info

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> StreamReader:
        if self.info is None:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ---------------------------------------------------------------------------
    def frames(self) -> Iterator[DecodedFrame]:
        """Decoded frames in presentation order until the end of the stream.

        Raises StreamReadError (connection lost, stall, undecodable stream) naming the
        camera; a file's clean end just stops the iteration.
        """
        if self._container is None:
            self.open()
        assert self._container is not None and self._stream is not None
        stream = self._stream
        last_progress = time.monotonic()
        corrupt_in_a_row = 0
        try:
            for packet in self._container.demux(stream):
                self.packets_read += 1
                if self._packet_sink is not None:
                    self._record(packet)
                if packet.is_keyframe and packet.pts is not None:
                    self._note_keyframe(float(packet.pts * packet.time_base))
                if packet.size and self.keyframes_only and not packet.is_keyframe:
                    last_progress = time.monotonic()  # data flows; only the decoder rests
                    continue
                try:
                    decoded = stream.decode(packet)
                except av.error.InvalidDataError:
                    self.corrupt_packets += 1
                    corrupt_in_a_row += 1
                    if corrupt_in_a_row >= MAX_CORRUPT_IN_A_ROW:
                        raise StreamReadError(
                            self.camera, self.url, f"{corrupt_in_a_row} corrupt packets in a row"
                        ) from None
                    continue
                corrupt_in_a_row = 0 if decoded else corrupt_in_a_row
                for frame in decoded:
                    last_progress = time.monotonic()
                    yield self._stamp(frame)
                if self.live and time.monotonic() - last_progress > self.options.read_timeout:
                    raise StreamStalledError(
                        self.camera,
                        self.url,
                        f"stalled: no frame for {self.options.read_timeout:.1f} s",
                    )
        except (av.error.FFmpegError, OSError) as exc:
            if isinstance(exc, av.error.EOFError):
                return
            if isinstance(exc, av.error.ExitError):  # PyAV's read timeout fired
                raise StreamStalledError(
                    self.camera, self.url, f"stalled: no data for {self.options.read_timeout:.1f} s"
                ) from None
            raise StreamReadError(self.camera, self.url, describe(exc)) from None
        if self.frames_decoded == 0:
            raise StreamReadError(self.camera, self.url, "no decodable video frames")

    def _record(self, packet: av.Packet) -> None:
        try:
            self._packet_sink(packet, self.timeline)
        except Exception:  # noqa: BLE001 - recording must never stop ingest
            log.exception("camera %r: recording this connection stops", self.camera)
            self._packet_sink = None

    def _stamp(self, frame: av.VideoFrame) -> DecodedFrame:
        self.frames_decoded += 1
        pts_s = float(frame.pts * frame.time_base) if frame.pts is not None else None
        t = self.timeline.stamp(pts_s)
        if self.options.realtime and not self.live:
            self._pace(t)
        return DecodedFrame(t=t, frame=frame, keyframe=frame.key_frame)

    def _pace(self, t: float) -> None:
        origin = self.timeline.wall_origin or time.time()
        delay = origin + t - time.time()
        if delay > 0:
            time.sleep(delay)

    def _note_keyframe(self, t: float) -> None:
        """Measure the keyframe interval; switch keyframe-only decoding on or off (auto)."""
        if self._key_times and t > self._key_times[-1]:
            gap = t - self._key_times[-1]
            self.keyframe_interval = max(self.keyframe_interval or 0.0, gap)
        self._key_times = (self._key_times + [t])[-8:]
        if self.options.keyframe_only is not None or len(self._key_times) < 3:
            return
        fits = (self.keyframe_interval or 1e9) <= self.options.interval + 1e-6
        # switch only at a keyframe (here) so no frame loses its reference
        self.keyframes_only = fits
