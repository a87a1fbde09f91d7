"""Appearance: a small colour descriptor of one person's box, and how alike two are.

What a person wears is what tells two walkers apart when their boxes cross, and what says
that someone coming back is someone seen before. The descriptor is two HSV histograms,
one of the torso (the upper body, where the jacket is) and one of the legs, each of
`HUE_BINS` x `SAT_BINS` chromatic bins plus `GREY_BINS` brightness bins for pixels too
dark or too grey to have a reliable hue (black, white and grey clothes, which a hue
histogram alone would call alike). Only the middle of the box is used: its edges are
mostly background. Similarity is the Bhattacharyya coefficient (0: nothing in common,
1: the same distribution), averaged over the two parts.

Cheap on purpose (a box at analysis resolution is a few hundred pixels; OpenCV's colour
conversion and numpy, about 0.1 ms of CPU a box), deterministic, and with no weights to
install. It does
not decide identities (tracker.py, reid.py) and knows nothing of tracks.
"""

from __future__ import annotations

import cv2
import numpy as np

from model.cv.geometry import Box

HUE_BINS = 8
SAT_BINS = 2
GREY_BINS = 8
# A pixel is chromatic (its hue is meaningful) when it is this saturated and this bright
# (OpenCV's 0..255 scales); otherwise only its brightness is binned.
MIN_SATURATION = 50
MIN_VALUE = 50
# The parts of the box, as shares of its width and height: (x0, x1, y0, y1). The head
# (top 15 %) and the feet (bottom 5 %) are left out: hair and ground vary little between
# people and much with the pose.
TORSO = (0.25, 0.75, 0.15, 0.55)
LEGS = (0.3, 0.7, 0.55, 0.95)
PART_BINS = HUE_BINS * SAT_BINS + GREY_BINS
SIZE = 2 * PART_BINS
MIN_PIXELS = 12  # a part with fewer pixels says nothing: the descriptor is None


def describe(frame_bgr: np.ndarray, box: Box) -> np.ndarray | None:
    """The descriptor of the person in `box` ([SIZE] float32, each part summing to 1), or
    None when the box is too small or outside the frame."""
    parts = []
    for region in (TORSO, LEGS):
        hist = _part(frame_bgr, box, region)
        if hist is None:
            return None
        parts.append(hist)
    return np.concatenate(parts)


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Bhattacharyya coefficient of two descriptors, 0..1; None when either is missing."""
    if a is None or b is None:
        return None
    coeff = np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None))
    return float(coeff[:PART_BINS].sum() + coeff[PART_BINS:].sum()) / 2.0


def blend(old: np.ndarray | None, new: np.ndarray | None, weight: float) -> np.ndarray | None:
    """Exponential moving average: `weight` is the share of the new sighting."""
    if old is None:
        return new
    if new is None:
        return old
    return ((1.0 - weight) * old + weight * new).astype(np.float32)


def _part(frame_bgr: np.ndarray, box: Box, region: tuple[float, float, float, float]
          ) -> np.ndarray | None:
    height, width = frame_bgr.shape[:2]
    x, y, w, h = box
    x0 = max(0, int(x + region[0] * w))
    x1 = min(width, int(x + region[1] * w))
    y0 = max(0, int(y + region[2] * h))
    y1 = min(height, int(y + region[3] * h))
    if (x1 - x0) * (y1 - y0) < MIN_PIXELS:
        return None
    hsv = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2HSV).reshape(-1, 3)
    hue, sat, val = (hsv[:, i].astype(np.int32) for i in range(3))
    chroma = (sat >= MIN_SATURATION) & (val >= MIN_VALUE)
    # OpenCV hue is 0..179; saturation bins split the chromatic range evenly.
    hbin = np.minimum(hue * HUE_BINS // 180, HUE_BINS - 1)
    sbin = np.minimum((sat - MIN_SATURATION) * SAT_BINS // (256 - MIN_SATURATION),
                      SAT_BINS - 1)
    gbin = np.minimum(val * GREY_BINS // 256, GREY_BINS - 1)
    index = np.where(chroma, hbin * SAT_BINS + sbin, HUE_BINS * SAT_BINS + gbin)
    hist = np.bincount(index, minlength=PART_BINS).astype(np.float32)
    return hist / hist.sum()
