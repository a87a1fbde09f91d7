"""People: OpenCV's built-in HOG + linear SVM people detector, run on motion regions.

HOG's 64x128 window only finds people about 100 pixels tall or taller, and surveillance
views hold many smaller ones; a full-frame upscale is too slow for one core. So each
motion region is padded, upscaled by a fixed factor, scanned, and the hits are mapped
back to analysis pixels and de-duplicated with non-maximum suppression. Owns nothing
but the HOG descriptor; it does not track (tracker.py) or decide events (events.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.cv.geometry import Box, merge_overlapping, nms, pad_box


@dataclass(frozen=True)
class Detection:
    bbox: Box  # x, y, w, h in analysis pixels
    score: float  # HOG SVM margin, squashed to 0..1


class PeopleDetector:
    def __init__(
        self,
        upscale: float = 2.0,
        hit_threshold: float = 0.0,
        min_score: float = 0.3,
        nms_iou: float = 0.3,
        region_pad: float = 0.25,
        max_region_frac: float = 0.5,
    ) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = upscale
        self.hit_threshold = hit_threshold
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.region_pad = region_pad
        self.max_region_frac = max_region_frac

    def detect(self, frame_bgr: np.ndarray, regions: tuple[Box, ...] | list[Box]) -> list[Detection]:
        """Detections inside the given motion regions (the whole frame is never scanned)."""
        height, width = frame_bgr.shape[:2]
        # The smallest window HOG can use, in analysis pixels at this upscale.
        min_w = int(np.ceil(72 / self.upscale))
        min_h = int(np.ceil(144 / self.upscale))
        padded = [
            p for r in regions
            if (p := pad_box(r, self.region_pad, min_w, min_h, width, height))[2] > 0 and p[3] > 0
        ]
        boxes: list[Box] = []
        scores: list[float] = []
        for region in merge_overlapping(padded):
            if region[2] * region[3] > self.max_region_frac * width * height:
                # A region this large is a lighting change or a moved camera, not people;
                # scanning it upscaled would take seconds.
                continue
            for box, score in self._scan(frame_bgr, region):
                boxes.append(box)
                scores.append(score)
        keep = nms(boxes, scores, self.nms_iou)
        return [Detection(boxes[i], scores[i]) for i in keep if scores[i] >= self.min_score]

    def detect_full(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Scan the whole frame in overlapping tiles: finds people who are not moving.

        Costs about as much as 20 motion-region scans, so callers run it rarely (at the
        start of a stream and every so often), not on every frame.
        """
        height, width = frame_bgr.shape[:2]
        tw, th = int(width * 0.6), int(height * 0.6)
        tiles = [(x, y, tw, th) for x in (0, width - tw) for y in (0, height - th)]
        boxes: list[Box] = []
        scores: list[float] = []
        for tile in tiles:
            for box, score in self._scan(frame_bgr, tile):
                boxes.append(box)
                scores.append(score)
        keep = nms(boxes, scores, self.nms_iou)
        return [Detection(boxes[i], scores[i]) for i in keep if scores[i] >= self.min_score]

    def _scan(self, frame_bgr: np.ndarray, region: Box) -> list[tuple[Box, float]]:
        x, y, w, h = region
        crop = frame_bgr[y : y + h, x : x + w]
        up = cv2.resize(crop, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        if up.shape[0] < 128 or up.shape[1] < 64:
            return []
        rects, weights = self._hog.detectMultiScale(
            up, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        out = []
        for (rx, ry, rw, rh), wgt in zip(rects, np.asarray(weights).reshape(-1), strict=True):
            box = (
                int(x + rx / self.upscale),
                int(y + ry / self.upscale),
                int(rw / self.upscale),
                int(rh / self.upscale),
            )
            # The SVM margin is unbounded; a logistic squash gives a 0..1 confidence that
            # orders detections the same way.
            out.append((box, float(1.0 / (1.0 + np.exp(-float(wgt))))))
        return out
