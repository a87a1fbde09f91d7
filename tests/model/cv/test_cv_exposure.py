"""An exposure jump (auto-exposure reacting to someone close, lights switched on) re-learns
the background instead of switching person detection off."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.cv import CVAnalyzer, CVConfig
from model.cv.motion import MotionDetector
from tests.model.cv.cv_footage import sample_video


def _brighter(frame: np.ndarray, gain: float = 1.5, bias: float = 30) -> np.ndarray:
    return cv2.convertScaleAbs(frame, alpha=gain, beta=bias)


def test_global_brightness_jump_relearns_then_motion_is_local_again():
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 120, (240, 320, 3), dtype=np.uint8)
    det = MotionDetector(history=50)
    for _ in range(10):
        det.apply(scene)
    jumped = det.apply(_brighter(scene))
    assert jumped.relearned and jumped.regions == () and jumped.fraction > 0.5
    bright = _brighter(scene)
    for _ in range(3):
        settled = det.apply(bright)
    assert not settled.relearned and settled.fraction < 0.01, "the new exposure is learnt"
    frame = bright.copy()
    frame[100:160, 200:230] = 10  # someone walks in under the new exposure
    moved = det.apply(frame)
    assert not moved.relearned and len(moved.regions) == 1


@pytest.mark.parametrize("detector", ["hog", "nanodet"])
def test_exposure_jump_does_not_stop_detection(vtest_path, detector):
    """vtest.avi at 1 fps with the exposure jumping up at t=10 s and staying up: people
    are still detected on the jump frames, and nobody 'leaves' because of it."""
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    frames, times = frames[:24], list(times[:24])
    clip = np.concatenate([frames[:10], np.stack([_brighter(f) for f in frames[10:]])])
    cfg = CVConfig(detector=detector, tamper_enabled=False)
    an = CVAnalyzer(cfg)
    if an.detector_name != detector:
        pytest.skip(f"{detector} is not installed here (the analyzer runs {an.detector_name})")
    seen: list[int] = []
    update = an._tracker.update

    def counting(boxes, t, *args, **kwargs):
        seen.append(len(boxes))
        return update(boxes, t, *args, **kwargs)

    an._tracker.update = counting
    events = an.process(clip, times, wall_origin=0.0)
    assert an.stats()["background_relearns"] >= 1
    assert seen[10] >= 2 and seen[11] >= 2, f"detections per frame: {seen}"
    left_at_jump = [e for e in events if e.kind == "person_leave" and 9 <= e.t_start <= 11]
    steady = CVAnalyzer(cfg)
    steady_events = steady.process(frames, times, wall_origin=0.0)
    steady_left = [e for e in steady_events
                   if e.kind == "person_leave" and 9 <= e.t_start <= 11]
    assert len(left_at_jump) <= len(steady_left), "no track ended by the jump"
