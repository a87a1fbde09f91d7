"""probe(): open a stream or file, sample it for a while, and report what ingest sees.

Owns the report behind `xlwatch probe` (stream info, sampled times, chunk boundaries,
reconnects, drops). Files are read synchronously (no drops); live streams run through
CameraIngest so reconnects and drops are the ones a camera would see. It does not print.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from pipeline.ingest.errors import StreamOpenError, mask_url
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.reader import StreamReader, is_live
from pipeline.ingest.sampler import FrameSampler
from pipeline.ingest.supervisor import CameraIngest
from pipeline.messages import CameraState, FrameChunk

DEFAULT_LIVE_SECONDS = 10.0


@dataclass(frozen=True)
class ProbeReport:
    url: str  # masked
    codec: str
    width: int
    height: int
    native_fps: float | None
    keyframe_interval: float | None
    keyframes_only: bool
    frames_decoded: int
    frames: list[dict[str, float]]
    chunks: list[dict[str, float]]
    reconnects: int
    dropped: int

    def to_dict(self) -> dict:
        return asdict(self)


def _chunk_rows(chunks: list[FrameChunk]) -> tuple[list[dict], list[dict]]:
    frames = [{"t": round(t, 3)} for c in chunks for t in c.times]
    rows = [
        {"start": round(c.start, 3), "end": round(c.end, 3), "frames": c.n_real} for c in chunks
    ]
    return frames, rows


def probe(
    url: str, seconds: float | None = None, options: IngestOptions | None = None
) -> ProbeReport:
    options = options or IngestOptions()
    if is_live(url):
        return _probe_live(url, seconds or DEFAULT_LIVE_SECONDS, options)
    return _probe_file(url, seconds, options)


def _probe_file(url: str, seconds: float | None, options: IngestOptions) -> ProbeReport:
    chunks: list[FrameChunk] = []
    with StreamReader(url, options, camera="probe") as reader:
        sampler = FrameSampler("probe", options, reader.timeline)
        for decoded in reader.frames():
            if seconds is not None and decoded.t >= seconds:
                break
            chunk = sampler.push(decoded)
            if chunk is not None:
                chunks.append(chunk)
        last = sampler.flush()
        chunks += [last] if last is not None else []
    assert reader.info is not None
    frames, rows = _chunk_rows(chunks)
    info = reader.info
    return ProbeReport(
        info.url, info.codec, info.width, info.height, info.native_fps,
        reader.keyframe_interval, reader.keyframes_only, reader.frames_decoded,
        frames, rows, reconnects=0, dropped=0,
    )  # fmt: skip


def _probe_live(url: str, seconds: float, options: IngestOptions) -> ProbeReport:
    ingest = CameraIngest("probe", url, options)
    chunks: list[FrameChunk] = []
    ingest.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = ingest.queue.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            if chunk is not None:
                chunks.append(chunk)
    finally:
        ingest.stop()
    while (chunk := ingest.queue.get(timeout=0)) is not None:
        chunks.append(chunk)  # the flushed partial chunk
    status = ingest.status()
    info = ingest.info
    if info is None or status.frames_decoded == 0:
        cause = status.last_error or f"no frame within {seconds:.1f} s"
        raise StreamOpenError("probe", url, cause.split(": ", 2)[-1])
    frames, rows = _chunk_rows(chunks)
    return ProbeReport(
        mask_url(url), info.codec, info.width, info.height, info.native_fps,
        ingest.keyframe_interval, bool(options.keyframe_only), status.frames_decoded,
        frames, rows, reconnects=status.reconnects, dropped=status.frames_dropped,
    )  # fmt: skip


__all__ = ["ProbeReport", "probe", "CameraState"]
