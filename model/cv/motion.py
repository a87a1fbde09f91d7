"""Motion: OpenCV MOG2 background subtraction turned into a foreground fraction and regions.

Owns the background model of one camera and the clean-up of its foreground mask (shadows
dropped, speckles opened away, blobs closed and merged into boxes). When most of the frame
changes at once (auto-exposure reacting to a person close to the lens, lights switched
on, a global brightness jump), the foreground says nothing about where people are: the
model is re-learnt from that frame, and the result says `relearned` (no regions) so that
callers keep detecting by other means. For a few frames after, a freshly learnt model
calls most foreground "shadow", so shadows count as foreground until it settles. It does
not decide what a region contains (people.py) nor when motion becomes an event (events.py).
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
    relearned: bool = False  # a whole-frame change: the background was re-learnt


class MotionDetector:
    """One MOG2 model per camera; `apply` learns from every frame it sees."""

    def __init__(
        self,
        history: int = 120,
        var_threshold: float = 24.0,
        min_region_area: int = 150,
        max_regions: int = 12,
        relearn_fraction: float = 0.5,
        exposure_jump: float = 15.0,
        relearn_frames: int = 4,
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
        self.relearn_fraction = relearn_fraction
        self.exposure_jump = exposure_jump
        self.relearn_frames = relearn_frames
        self.frames_seen = 0
        self.relearns = 0
        self._settling = 0  # frames left in which shadows count (after a re-learn)
        self._brightness: float | None = None

    def apply(self, frame_bgr: np.ndarray) -> MotionResult:
        brightness = float(cv2.mean(frame_bgr)[1])  # green: close to luma, one pass
        jump = self._brightness is not None and abs(brightness - self._brightness) > (
            self.exposure_jump)
        self._brightness = brightness
        mask = self._mog.apply(frame_bgr)
        self.frames_seen += 1
        if self.frames_seen == 1:
            # MOG2 has no background yet: everything it reports is the scene itself.
            return MotionResult(0.0, ())
        fg = np.where(mask >= (127 if self._settling else 255), 255, 0).astype(np.uint8)
        self._settling = max(0, self._settling - 1)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close)
        fraction = float(np.count_nonzero(fg)) / fg.size
        # A brightness jump alone may be a large person walking by; with a good share of
        # the frame marked as well it is the exposure or the lights.
        if fraction > self.relearn_fraction or (jump and fraction > self.relearn_fraction / 2):
            # Start the background again from this frame (rate 1 re-initialises MOG2).
            self._mog.apply(frame_bgr, learningRate=1.0)
            self._settling = self.relearn_frames
            self.relearns += 1
            return MotionResult(fraction, (), relearned=True)
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
