"""Dense again from the recording: the frames of chunks whose fine KV is gone, read back
from the camera's recording so that a question which wants them dense gets them dense.

`RecordedChunks.frames(chunks)` rebuilds each chunk's model frames (uint8
[4 * n_groups, size, size, 3] RGB, as the ingest sampler made them): frame k of group g
was sampled at `wall_origin + group_times[g] + k * interval`, the interval being the
chunk's own group spacing over 4 frames (the camera's sampling interval for a chunk of
one group). A moment the recording lacks takes the frame before it (the sampler pads a
short chunk the same way); a chunk with fewer than `min_found` of its frames recorded is
left out: its question reads it coarse, as without a recording. The engine prefills
what comes back (`Engine.redensify`); `MemoryCore` decides when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.ingest.sampler import model_rgb
from pipeline.messages import FRAMES_PER_GROUP
from pipeline.record.frames import frames_at
from pipeline.record.layout import camera_dir

log = logging.getLogger(__name__)
MIN_FOUND = 0.75  # share of a chunk's frames that must be in the recording
READERS = 4  # chunks of one question decoded at once


@dataclass(frozen=True)
class ChunkTimes:
    """What reading a chunk back needs: its records' times (no tensors)."""

    camera: str
    seq: int
    group_times: tuple[float, ...]
    wall_origin: float


class RecordedChunks:
    def __init__(self, data_dir: Path | str, model_size: int,
                 interval_of: Callable[[str], float],
                 keyframes_of: Callable[[str], bool | None] = lambda camera: None,
                 min_found: float = MIN_FOUND) -> None:
        """`interval_of(camera)`: its sampling interval; `keyframes_of(camera)`: whether
        its ingest decodes keyframes only (True, False, None: the reader's auto rule)."""
        self.data_dir = Path(data_dir)
        self.model_size = model_size
        self.interval_of = interval_of
        self.keyframes_of = keyframes_of
        self.min_found = min_found

    def moments(self, chunk: ChunkTimes) -> list[float]:
        times = chunk.group_times
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
        interval = min(gaps) / FRAMES_PER_GROUP if gaps else self.interval_of(chunk.camera)
        return [chunk.wall_origin + t + k * interval for t in times
                for k in range(FRAMES_PER_GROUP)]

    def frames(self, chunks: list[ChunkTimes]) -> dict[int, np.ndarray]:
        """seq -> model frames of each chunk the recording holds (others left out); the
        chunks are decoded in parallel (PyAV decodes without the GIL)."""
        if len(chunks) <= 1:
            got = [self.chunk_frames(c) for c in chunks]
        else:
            with ThreadPoolExecutor(min(READERS, len(chunks))) as pool:
                got = list(pool.map(self.chunk_frames, chunks))
        return {c.seq: g for c, g in zip(chunks, got, strict=True) if g is not None}

    def chunk_frames(self, chunk: ChunkTimes) -> np.ndarray | None:
        moments = self.moments(chunk)
        got = frames_at(camera_dir(self.data_dir, chunk.camera), moments,
                        lambda f: model_rgb(f, self.model_size),
                        keyframes_only=self.keyframes_of(chunk.camera),
                        interval=self.interval_of(chunk.camera))
        found = sum(g is not None for g in got)
        if found < self.min_found * len(moments):
            log.info("camera %s: chunk %d is not in the recording (%d of %d frames); "
                     "it stays coarse", chunk.camera, chunk.seq, found, len(moments))
            return None
        filled, last = [], next(g for g in got if g is not None)
        for g in got:
            last = g if g is not None else last
            filled.append(last)
        return np.stack(filled)
