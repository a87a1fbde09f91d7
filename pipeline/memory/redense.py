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

from pipeline.ingest.options import IngestOptions
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
    def __init__(self, data_dir: Path | str, options_of: Callable[[str], IngestOptions],
                 min_found: float = MIN_FOUND) -> None:
        """`options_of(camera)`: the ingest options the camera runs with (its sampling
        interval, model frame size and keyframe-only decoding), read once per question."""
        self.data_dir = Path(data_dir)
        self.options_of = options_of
        self.min_found = min_found

    @staticmethod
    def moments(chunk: ChunkTimes, interval: float) -> list[float]:
        """When each frame was sampled; `interval` for a chunk of one group."""
        times = chunk.group_times
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
        step = min(gaps) / FRAMES_PER_GROUP if gaps else interval
        return [chunk.wall_origin + t + k * step for t in times
                for k in range(FRAMES_PER_GROUP)]

    def frames(self, chunks: list[ChunkTimes]) -> dict[int, np.ndarray]:
        """seq -> model frames of each chunk the recording holds (others left out); the
        chunks are decoded in parallel (PyAV decodes without the GIL)."""
        options = {cam: self.options_of(cam) for cam in {c.camera for c in chunks}}
        jobs = [(c, options[c.camera]) for c in chunks]
        if len(jobs) <= 1:
            got = [self.chunk_frames(*job) for job in jobs]
        else:
            with ThreadPoolExecutor(min(READERS, len(jobs))) as pool:
                got = list(pool.map(lambda job: self.chunk_frames(*job), jobs))
        return {c.seq: g for c, g in zip(chunks, got, strict=True) if g is not None}

    def chunk_frames(self, chunk: ChunkTimes, options: IngestOptions) -> np.ndarray | None:
        moments = self.moments(chunk, options.interval)
        got = frames_at(camera_dir(self.data_dir, chunk.camera), moments,
                        lambda f: model_rgb(f, options.model_size),
                        keyframes_only=options.keyframe_only, interval=options.interval)
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
