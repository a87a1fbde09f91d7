"""Tamper: is the camera's view blocked, blurred or moved, compared with its own past?

Owns a slowly updated reference of the normal view (a small grey image and its
sharpness). Each frame is compared with it: a dark or featureless frame is `blocked`;
a frame whose sharpness (variance of the Laplacian) fell far below the reference is
`blurred`; a frame that no longer lines up with the reference (phase-correlation shift or
low normalised correlation) is `moved`. People walking through change little of a
downscaled, smoothed view, so they do not count as a move. The reference only learns
from normal frames; after `relearn_s` of one tamper state the current view is adopted
(a camera that was deliberately re-aimed stops alarming). Events are built elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SIZE = (160, 120)  # compare at this size: cheap, and insensitive to people walking by


@dataclass(frozen=True)
class TamperResult:
    state: str | None  # "blocked", "blurred", "moved" or None (normal)
    brightness: float
    contrast: float
    sharpness_ratio: float  # frame sharpness / reference sharpness
    correlation: float  # normalised correlation with the reference view, -1..1
    shift_px: float  # estimated translation against the reference, analysis pixels


class TamperDetector:
    def __init__(
        self,
        dark_level: float = 25.0,
        min_contrast: float = 8.0,
        blur_ratio: float = 0.25,
        min_correlation: float = 0.55,
        max_shift_frac: float = 0.04,
        learn_rate: float = 0.05,
        relearn_s: float = 60.0,
    ) -> None:
        self.dark_level = dark_level
        self.min_contrast = min_contrast
        self.blur_ratio = blur_ratio
        self.min_correlation = min_correlation
        self.max_shift_frac = max_shift_frac
        self.learn_rate = learn_rate
        self.relearn_s = relearn_s
        self._ref: np.ndarray | None = None  # float32 grey at _SIZE
        self._ref_sharp = 0.0
        self._state: str | None = None
        self._state_since = 0.0

    def check(self, frame_bgr: np.ndarray, t: float) -> TamperResult:
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, _SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        sharp = float(cv2.Laplacian(small, cv2.CV_32F).var())
        brightness, contrast = float(small.mean()), float(small.std())
        if self._ref is None:
            if brightness >= self.dark_level and contrast >= self.min_contrast:
                self._ref, self._ref_sharp = small, sharp
            return TamperResult(None, brightness, contrast, 1.0, 1.0, 0.0)
        ratio = sharp / max(self._ref_sharp, 1e-6)
        corr, shift = self._alignment(small, frame_bgr.shape[1])
        state = self._classify(brightness, contrast, ratio, corr, shift, frame_bgr.shape[1])
        self._learn(state, small, sharp, t)
        return TamperResult(state, brightness, contrast, ratio, corr, shift)

    def _alignment(self, small: np.ndarray, width: int) -> tuple[float, float]:
        ref = self._ref
        assert ref is not None
        a = cv2.GaussianBlur(small, (5, 5), 0)
        b = cv2.GaussianBlur(ref, (5, 5), 0)
        corr = float(cv2.matchTemplate(a, b, cv2.TM_CCOEFF_NORMED)[0, 0])
        win = cv2.createHanningWindow(_SIZE, cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(b, a, win)
        return corr, float(np.hypot(dx, dy)) * width / _SIZE[0]

    def _classify(
        self, brightness: float, contrast: float, ratio: float, corr: float, shift: float,
        width: int,
    ) -> str | None:
        if brightness < self.dark_level or contrast < self.min_contrast:
            return "blocked"
        if ratio < self.blur_ratio:
            return "blurred"
        if corr < self.min_correlation or shift > self.max_shift_frac * width:
            return "moved"
        return None

    def _learn(self, state: str | None, small: np.ndarray, sharp: float, t: float) -> None:
        if state != self._state:
            self._state, self._state_since = state, t
        if state is None:
            cv2.accumulateWeighted(small, self._ref, self.learn_rate)
            self._ref_sharp += self.learn_rate * (sharp - self._ref_sharp)
        elif t - self._state_since >= self.relearn_s and state != "blocked":
            # Held for long: this is the camera's new normal (re-aimed, new lens focus).
            self._ref, self._ref_sharp = small, sharp
            self._state = None
