"""Tamper checks on real vtest.avi frames: blocked, blurred, moved, and normal footage."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest

from model.cv.analyzer import CVAnalyzer, CVConfig
from model.cv.tamper import TamperDetector
from tests.model.cv.cv_footage import sample_video


@pytest.fixture
def learned(vtest_path):
    """A detector that has seen 20 s of normal footage, and the next normal frame."""
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    det = TamperDetector()
    for frame, t in zip(frames[:20], times[:20], strict=True):
        assert det.check(frame, t).state is None
    return det, frames[20]


def _shifted(frame: np.ndarray, dx: int, dy: int) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda f: np.zeros_like(f), "blocked", id="black-frame-blocked"),
        pytest.param(lambda f: np.full_like(f, 180), "blocked", id="uniform-cover-blocked"),
        pytest.param(lambda f: cv2.GaussianBlur(f, (0, 0), 6), "blurred", id="heavy-blur-blurred"),
        pytest.param(lambda f: _shifted(f, 60, 0), "moved", id="pan-60px-moved"),
        pytest.param(lambda f: _shifted(f, 25, 35), "moved", id="tilt-and-pan-moved"),
        pytest.param(lambda f: f[::-1].copy(), "moved", id="flipped-view-moved"),
        pytest.param(lambda f: f, None, id="normal-frame-none"),
        pytest.param(lambda f: cv2.GaussianBlur(f, (3, 3), 0), None, id="slight-softness-none"),
    ],
)
def test_tamper_state_of_altered_frame(learned, make, expected):
    det, frame = learned
    result = copy.deepcopy(det).check(make(frame), 21.0)
    assert result.state == expected, result


def test_normal_footage_raises_no_tamper(vtest_path):
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    det = TamperDetector()
    states = [det.check(f, t).state for f, t in zip(frames, times, strict=True)]
    assert states.count(None) == len(states)


def test_blocked_interval_event_opens_and_closes(vtest_path):
    """Analyzer level: 3 s of black frames (held for 2 s: tamper_hold_s) become one
    tamper_blocked event, from the first black frame, with a thumbnail."""
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    clip = np.concatenate([frames[:10], np.zeros_like(frames[:3]), frames[13:20]])
    an = CVAnalyzer(CVConfig(tamper_gap_s=1.0, tamper_hold_s=2.0, hog_upscale=1.5))
    events = an.process(clip, times[:20], wall_origin=1_000.0) + an.flush()
    blocked = [e for e in events if e.kind == "tamper_blocked"]
    assert [e.t_end for e in blocked] == [None, times[12]]
    assert blocked[0].t_start == times[10] and blocked[0].wall_start == 1_000.0 + times[10]
    assert blocked[1].key == blocked[0].key
    assert blocked[1].thumbnail_jpeg[:2] == b"\xff\xd8"
    assert not [e for e in events if e.kind in ("tamper_moved", "tamper_blurred")]
