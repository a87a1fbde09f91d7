"""Tamper: is the camera's whole view blocked, blurred or moved, and has it stayed so?

Owns a slowly updated reference of the normal view (a small grey image, its sharpness,
and which cells of a coarse grid have texture). Each frame is compared with it:

- `blocked`: the frame is dark or featureless, and so are most of the reference's
  textured cells (a hand, tape, a cloth or a dead sensor covers the whole view);
- `blurred`: sharpness (variance of the Laplacian) fell far below the reference's, over
  the frame and in most textured cells (a smeared or defocused lens, not one blurry
  person close by);
- `moved`: the view is shifted (phase correlation finds a translation that explains the
  change) or no longer lines up with the reference in most textured cells.

A car or a person passing close changes only part of the view, or changes it briefly:
the cell tests reject the first, and `hold_s` the second: a state is reported only once
the view has been abnormal without a break for `hold_s` seconds of stream time
(`raw` says what each single frame looked like, `since` when the abnormal run began).
The reference learns only from normal frames; after `relearn_s` of one tamper state the
current view is adopted (a camera that was deliberately re-aimed stops alarming). Events
are built elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SIZE = (160, 120)  # compare at this size: cheap, and insensitive to people walking by
_GRID = (4, 4)  # columns, rows of the whole-view cell tests


@dataclass(frozen=True)
class TamperResult:
    state: str | None  # "blocked", "blurred", "moved" held for hold_s, or None (normal)
    brightness: float
    contrast: float
    sharpness_ratio: float  # frame sharpness / reference sharpness
    correlation: float  # normalised correlation with the reference view, -1..1
    shift_px: float  # estimated translation against the reference, analysis pixels
    raw: str | None = None  # what this frame alone looks like
    since: float | None = None  # start of the current run of abnormal frames


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
        hold_s: float = 0.0,
        whole_share: float = 0.75,
    ) -> None:
        self.dark_level = dark_level
        self.min_contrast = min_contrast
        self.blur_ratio = blur_ratio
        self.min_correlation = min_correlation
        self.max_shift_frac = max_shift_frac
        self.learn_rate = learn_rate
        self.relearn_s = relearn_s
        self.hold_s = hold_s
        self.whole_share = whole_share  # share of textured cells that must agree
        self._ref: np.ndarray | None = None  # float32 grey at _SIZE
        self._ref_sharp = 0.0
        self._raw: str | None = None
        self._raw_since = 0.0
        self._abnormal_since: float | None = None

    def check(self, frame_bgr: np.ndarray, t: float) -> TamperResult:
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, _SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        lap = cv2.Laplacian(small, cv2.CV_32F)
        sharp = float(lap.var())
        brightness, contrast = float(small.mean()), float(small.std())
        if self._ref is None:
            if brightness >= self.dark_level and contrast >= self.min_contrast:
                self._ref, self._ref_sharp = small, sharp
            return TamperResult(None, brightness, contrast, 1.0, 1.0, 0.0)
        ratio = sharp / max(self._ref_sharp, 1e-6)
        corr, shift, explained = self._alignment(small, frame_bgr.shape[1])
        raw = self._classify(small, lap, brightness, contrast, ratio, corr, shift, explained,
                             frame_bgr.shape[1])
        raw = self._learn(raw, small, sharp, t)
        if raw is None:
            self._abnormal_since = None
        elif self._abnormal_since is None:
            self._abnormal_since = t
        since = self._abnormal_since
        state = raw if since is not None and t - since >= self.hold_s else None
        return TamperResult(state, brightness, contrast, ratio, corr, shift, raw, since)

    def _alignment(self, small: np.ndarray, width: int) -> tuple[float, float, bool]:
        """(correlation with the reference, shift in analysis pixels, whether shifting the
        reference by it explains the change)."""
        ref = self._ref
        assert ref is not None
        a = cv2.GaussianBlur(small, (5, 5), 0)
        b = cv2.GaussianBlur(ref, (5, 5), 0)
        corr = float(cv2.matchTemplate(a, b, cv2.TM_CCOEFF_NORMED)[0, 0])
        win = cv2.createHanningWindow(_SIZE, cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(b, a, win)
        shift = float(np.hypot(dx, dy)) * width / _SIZE[0]
        mx, my = int(np.ceil(abs(dx))), int(np.ceil(abs(dy)))
        explained = False
        if mx < _SIZE[0] // 3 and my < _SIZE[1] // 3:
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(b, m, _SIZE)
            h, w = b.shape
            crop = (slice(my, h - my), slice(mx, w - mx))
            aligned = float(cv2.matchTemplate(a[crop], moved[crop], cv2.TM_CCOEFF_NORMED)[0, 0])
            # The shift is real when the shifted reference matches well and clearly better
            # than the unshifted one; a car crossing a plain view explains nothing.
            explained = aligned >= max(self.min_correlation, corr + 0.1)
        return corr, shift, explained

    def _classify(
        self, small: np.ndarray, lap: np.ndarray, brightness: float, contrast: float,
        ratio: float, corr: float, shift: float, explained: bool, width: int,
    ) -> str | None:
        ref = self._ref
        assert ref is not None
        cells = list(zip(_cells(ref), _cells(small), _cells(cv2.Laplacian(ref, cv2.CV_32F)),
                         _cells(lap), strict=True))
        textured = [c for c in cells if float(c[0].std()) >= self.min_contrast]
        if not textured:
            textured = cells  # a plain reference view: judge every cell

        def share(test) -> float:
            return sum(1 for c in textured if test(*c)) / len(textured)

        if brightness < self.dark_level or contrast < self.min_contrast:
            covered = share(lambda r, f, rl, fl: float(f.mean()) < self.dark_level
                            or float(f.std()) < self.min_contrast)
            if covered >= self.whole_share:
                return "blocked"
        if ratio < self.blur_ratio:
            soft = share(lambda r, f, rl, fl: float(fl.var()) < 2 * self.blur_ratio
                         * max(float(rl.var()), 1e-6))
            if soft >= self.whole_share:
                return "blurred"
        if shift > self.max_shift_frac * width and explained:
            return "moved"
        if corr < self.min_correlation:
            changed = share(lambda r, f, rl, fl: _ncc(r, f) < self.min_correlation)
            if changed >= self.whole_share:
                return "moved"
        return None

    def _learn(self, raw: str | None, small: np.ndarray, sharp: float, t: float) -> str | None:
        """Update the reference; returns the frame's state (None once a view is adopted)."""
        if raw != self._raw:
            self._raw, self._raw_since = raw, t
        if raw is None:
            cv2.accumulateWeighted(small, self._ref, self.learn_rate)
            self._ref_sharp += self.learn_rate * (sharp - self._ref_sharp)
        elif t - self._raw_since >= self.relearn_s and raw != "blocked":
            # Held for long: this is the camera's new normal (re-aimed, new lens focus).
            self._ref, self._ref_sharp = small, sharp
            self._raw = None
            return None
        return raw


def _cells(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[:2]
    cols, rows = _GRID
    return [img[r * h // rows:(r + 1) * h // rows, c * w // cols:(c + 1) * w // cols]
            for r in range(rows) for c in range(cols)]


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    if float(a.std()) < 1e-3 or float(b.std()) < 1e-3:
        return 0.0  # a flat cell lines up with nothing
    a = cv2.GaussianBlur(a, (5, 5), 0)
    b = cv2.GaussianBlur(b, (5, 5), 0)
    return float(cv2.matchTemplate(b, a, cv2.TM_CCOEFF_NORMED)[0, 0])
