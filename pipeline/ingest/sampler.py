"""FrameSampler: keeps frames at the camera's fps and packs them into FrameChunks.

Owns the sampling grid (one frame per 1/fps seconds of stream time), the two copies of
each kept frame (model: size x size RGB, bicubic, no crop; analysis: BGR at a configured
width, aspect kept), and chunking (groups of 4 frames, chunks of 4 groups = 16 frames;
the last partial chunk is padded to a multiple of 4 by repeating its last frame). It
does not decode, reconnect or queue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.ingest.options import IngestOptions
from pipeline.ingest.reader import DecodedFrame
from pipeline.ingest.timeline import Timeline
from pipeline.messages import FRAMES_PER_CHUNK, FRAMES_PER_GROUP, FrameChunk

_EPS = 1e-6  # pts are rationals: 25 * 0.04 may land a hair below 1.0


@dataclass(frozen=True, eq=False)
class SampledFrame:
    t: float
    model_rgb: np.ndarray  # uint8 [size, size, 3]
    analysis_bgr: np.ndarray  # uint8 [h, w, 3]


def analysis_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """(w, h) for the CV copy: target width, aspect kept, both even (codec-friendly)."""
    if target_width is None:
        return width, height
    h = max(2, round(height * target_width / width / 2) * 2)
    return target_width, h


def model_rgb(frame: Any, size: int) -> np.ndarray:
    """The model's copy of a decoded frame: size x size RGB, bicubic, no crop (also what
    a chunk read back from its recording is made of, pipeline.memory.redense)."""
    return frame.reformat(size, size, "rgb24", interpolation="BICUBIC").to_ndarray()


class FrameSampler:
    """Feed decoded frames in time order; get FrameChunks out (16 sampled frames each)."""

    def __init__(
        self, camera: str, options: IngestOptions | None = None, timeline: Timeline | None = None
    ) -> None:
        self.camera = camera
        self.options = options or IngestOptions()
        self.timeline = timeline  # its wall_origin (set at the first frame) stamps chunks
        self._fallback_origin = time.time()
        self.frames_sampled = 0
        self.chunks_emitted = 0
        self._next_t: float | None = None
        self._seq = 0
        self._pending: list[SampledFrame] = []

    @property
    def wall_origin(self) -> float:
        origin = self.timeline.wall_origin if self.timeline is not None else None
        return origin if origin is not None else self._fallback_origin

    def want(self, t: float) -> bool:
        """Whether a frame at `t` falls on the sampling grid (and advance the grid)."""
        if self._next_t is None:
            self._next_t = t
        if t + _EPS < self._next_t:
            return False
        step = self.options.interval
        # skip whole grid points lost to a gap, keeping the grid's phase
        missed = math.floor((t + _EPS - self._next_t) / step)
        self._next_t += (missed + 1) * step
        return True

    def convert(self, decoded: DecodedFrame) -> SampledFrame:
        frame = decoded.frame
        model = model_rgb(frame, self.options.model_size)
        aw, ah = analysis_size(frame.width, frame.height, self.options.analysis_width)
        analysis = frame.reformat(aw, ah, "bgr24", interpolation="AREA").to_ndarray()
        return SampledFrame(decoded.t, model, analysis)

    def push(self, decoded: DecodedFrame) -> FrameChunk | None:
        """Offer one decoded frame; return a chunk when 16 sampled frames are ready."""
        if not self.want(decoded.t):
            return None
        self.frames_sampled += 1
        self._pending.append(self.convert(decoded))
        if len(self._pending) == FRAMES_PER_CHUNK:
            return self._emit()
        return None

    def flush(self) -> FrameChunk | None:
        """Emit the partial chunk (padded to a multiple of 4), if any."""
        return self._emit() if self._pending else None

    def drop_pending(self) -> int:
        n = len(self._pending)
        self._pending = []
        return n

    def _emit(self) -> FrameChunk:
        frames, self._pending = self._pending, []
        model = np.stack([f.model_rgb for f in frames])
        pad = -len(frames) % FRAMES_PER_GROUP
        if pad:
            model = np.concatenate([model, np.repeat(model[-1:], pad, axis=0)])
        chunk = FrameChunk(
            camera=self.camera,
            seq=self._seq,
            times=tuple(f.t for f in frames),
            wall_origin=self.wall_origin,
            model_frames=model,
            analysis_frames=np.stack([f.analysis_bgr for f in frames]),
        )
        self._seq += 1
        self.chunks_emitted += 1
        return chunk

    def chunks(self, frames: Iterable[DecodedFrame]) -> Iterator[FrameChunk]:
        for decoded in frames:
            chunk = self.push(decoded)
            if chunk is not None:
                yield chunk
        last = self.flush()
        if last is not None:
            yield last
