"""Motion: OpenCV MOG2 background subtraction turned into a foreground fraction and regions.

Owns the background model of one camera and the clean-up of its foreground mask (shadows
dropped, speckles opened away, blobs closed and merged into boxes). It does not decide
what a region contains (people.py) nor when motion becomes an event (events.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in analysis pixels


@dataclass(frozen=True)
class MotionResult:
    fraction: float  # share of the frame's pixels that are foreground, 0..1
    regions: tuple[Box, ...]  # bounding boxes of foreground blobs, largest first


class MotionDetector:
    """One MOG2 model per camera; `apply` learns from every frame it sees."""

    def __init__(
        self,
        history: int = 120,
        var_threshold: float = 24.0,
        min_region_area: int = 150,
        max_regions: int = 12,
    ) -> None:
        # Shadows are detected (value 127) so that they can be dropped: a person's shadow
        # on the floor would otherwise double the regions HOG has to scan.
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=True
        )
        self._min_area = min_region_area
        self._max_regions = max_regions
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        self.frames_seen = 0

    def apply(self, frame_bgr: np.ndarray) -> MotionResult:
        mask = self._mog.apply(frame_bgr)
        self.frames_seen += 1
        if self.frames_seen == 1:
            # MOG2 has no background yet: everything it reports is the scene itself.
            return MotionResult(0.0, ())
        fg = np.where(mask == 255, 255, 0).astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close)
        fraction = float(np.count_nonzero(fg)) / fg.size
        return MotionResult(fraction, self._regions(fg))

    def _regions(self, fg: np.ndarray) -> tuple[Box, ...]:
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        boxes = [
            (int(x), int(y), int(w), int(h))
            for x, y, w, h, area in stats[1:n]
            if area >= self._min_area
        ]
        boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
        return tuple(boxes[: self._max_regions])
