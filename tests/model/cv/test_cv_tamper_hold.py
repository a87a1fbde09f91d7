"""Tamper alarms only for a lasting change of the whole view (real vtest.avi frames).

A car-sized occluder sliding through, a person close to the lens for a moment, or the
same on a low-contrast view must not alarm; a covered, black, blurred or shifted view held
for 10 s must, from the moment it began.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.cv.analyzer import CVAnalyzer, CVConfig
from model.cv.tamper import TamperDetector
from tests.model.cv.cv_footage import sample_video

HOLD_S = 5.0


def _low_contrast(frame: np.ndarray) -> np.ndarray:
    """A plain, washed-out view (fog, a bare corridor): 30 % of the contrast, some noise."""
    rng = np.random.default_rng(0)
    grey = np.full_like(frame, 140)
    out = cv2.addWeighted(frame, 0.3, grey, 0.7, 0)
    return cv2.add(out, rng.integers(0, 4, frame.shape, dtype=np.uint8))


def _slide(frames: np.ndarray, box_w: float, box_h: float, texture: np.ndarray | None):
    """The frames with a dark (or textured) box sliding left to right across them."""
    out = []
    h, w = frames.shape[1:3]
    bw, bh = int(w * box_w), int(h * box_h)
    for i, f in enumerate(frames):
        f = f.copy()
        x = int((w + bw) * i / max(len(frames) - 1, 1)) - bw
        x0, x1 = max(x, 0), min(x + bw, w)
        y0 = h - bh - 10
        if x1 > x0:
            patch = texture[:bh, : x1 - x0] if texture is not None else 40
            f[y0 : y0 + bh, x0:x1] = patch
        out.append(f)
    return np.stack(out)


def _states(frames: np.ndarray, times, hold_s: float = HOLD_S):
    det = TamperDetector(hold_s=hold_s)
    return [det.check(f, t) for f, t in zip(frames, times, strict=True)]


@pytest.fixture
def footage(vtest_path):
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    return frames[:40], np.asarray(times[:40])


@pytest.mark.parametrize("plain_view", [False, True], ids=["normal-view", "low-texture-view"])
@pytest.mark.parametrize(
    ("box_w", "box_h", "textured"),
    [pytest.param(0.45, 0.35, True, id="car-crossing"),
     pytest.param(0.35, 0.9, False, id="close-person-passing"),
     pytest.param(0.6, 0.9, False, id="very-close-person-passing")],
)
def test_passing_occluder_raises_no_tamper(footage, plain_view, box_w, box_h, textured):
    frames, times = footage
    if plain_view:
        frames = np.stack([_low_contrast(f) for f in frames])
    texture = frames[0][::-1, ::-1].copy() if textured else None  # a car: real texture
    clip = np.concatenate([frames[:20], _slide(frames[20:32], box_w, box_h, texture),
                           frames[32:]])
    results = _states(clip, times)
    assert [r.state for r in results] == [None] * len(results)


def test_person_filling_the_view_for_a_moment_raises_no_tamper(footage):
    frames, times = footage
    clip = frames.copy()
    clip[20:23, 30:, 100:540] = 35  # someone right in front of the lens for 3 s
    assert {r.state for r in _states(clip, times)} == {None}


def _shift(frame: np.ndarray) -> np.ndarray:
    m = np.float32([[1, 0, 50], [0, 1, 20]])
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]),
                          borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(np.zeros_like, "blocked", id="black-view"),
        pytest.param(lambda f: np.full_like(f, 200), "blocked", id="covered-view"),
        pytest.param(lambda f: cv2.GaussianBlur(f, (0, 0), 6), "blurred", id="strong-blur"),
        pytest.param(_shift, "moved", id="shifted-view"),
    ],
)
def test_whole_view_change_held_ten_seconds_fires_after_hold(footage, make, expected):
    frames, times = footage
    clip = np.concatenate([frames[:20], np.stack([make(f) for f in frames[20:30]]),
                           frames[30:]])
    results = _states(clip, times)
    first = next(i for i, r in enumerate(results) if r.state is not None)
    assert times[first] - times[20] == pytest.approx(HOLD_S, abs=1.0), "not before the hold"
    assert {r.state for r in results[first:30]} == {expected}
    assert results[first].since == times[20], "the alarm dates from when it began"
    assert {r.state for r in results[:20]} == {None}


def test_analyzer_dates_a_held_blocked_event_from_its_start(footage):
    frames, times = footage
    clip = np.concatenate([frames[:20], np.zeros_like(frames[20:30]), frames[30:]])
    an = CVAnalyzer(CVConfig(tamper_hold_s=HOLD_S, tamper_gap_s=1.0))
    events = an.process(clip, list(times), wall_origin=0.0) + an.flush()
    blocked = [e for e in events if e.kind == "tamper_blocked" and e.t_end is not None]
    assert [(e.t_start, e.t_end) for e in blocked] == [(times[20], times[29])]
    assert not [e for e in events if e.kind in ("tamper_moved", "tamper_blurred")]
