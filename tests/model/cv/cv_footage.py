"""Footage helpers for the cv tests: vtest.avi sampled at a given rate, at analysis width.

Decoding is cached per (path, fps, width) because several tests read the same samples.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np


@lru_cache(maxsize=4)
def sample_video(path: str, fps: float = 1.0, width: int = 640) -> tuple[np.ndarray, tuple]:
    """(frames uint8 [n,h,w,3] BGR, times) of `path` sampled at `fps` by stream time."""
    frames, times = [], []
    next_t = 0.0
    with av.open(str(Path(path))) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.time)
            if t + 1e-6 < next_t:
                continue
            next_t += 1.0 / fps
            img = frame.to_ndarray(format="bgr24")
            h = round(img.shape[0] * width / img.shape[1])
            frames.append(cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA))
            times.append(t)
    return np.stack(frames), tuple(times)


def run_chunks(analyzer, frames: np.ndarray, times, wall_origin: float = 0.0, size: int = 16):
    """Feed frames to a CVAnalyzer in chunks of `size` like ingest does, then flush."""
    events = []
    for i in range(0, len(frames), size):
        events += analyzer.process(frames[i : i + size], times[i : i + size], wall_origin)
    return events + analyzer.flush()
