"""IoU tracker table tests: identity, confirmation, misses and leaving (pure Python)."""

from __future__ import annotations

import pytest

from model.cv.tracker import IoUTracker


def _run(tracker: IoUTracker, frames: list[tuple[float, list]]):
    confirmed, ended = [], []
    for t, boxes in frames:
        upd = tracker.update(boxes, t)
        confirmed += [(t, tr.track_id) for tr in upd.confirmed]
        ended += [(t, tr.track_id, tr.last_seen) for tr in upd.ended]
    return confirmed, ended


def test_slowly_moving_box_keeps_its_id():
    tracker = IoUTracker(max_age_s=3.0, min_hits=2)
    ids = []
    for i in range(10):
        upd = tracker.update([(100 + 5 * i, 50, 40, 80)], float(i))
        ids.append({tr.track_id for tr, _ in upd.matched} or {tr.track_id for tr in tracker.tracks})
    assert len(set().union(*ids)) == 1
    assert len(tracker.tracks) == 1 and tracker.tracks[0].hits == 10


def test_fast_walker_at_one_fps_matched_by_distance_fallback():
    """At 1 fps a person moves more than their width; IoU is 0 but identity must hold."""
    tracker = IoUTracker(iou_threshold=0.2, max_center_dist=0.8, max_age_s=3.0)
    for i in range(5):
        tracker.update([(100 + 45 * i, 50, 40, 80)], float(i))
    assert [tr.track_id for tr in tracker.tracks] == [1]


@pytest.mark.parametrize(
    ("gap_frames", "expect_leave"),
    [
        pytest.param(1, False, id="brief-miss-keeps-track"),
        pytest.param(3, False, id="miss-equal-to-max-age-keeps-track"),
        pytest.param(5, True, id="long-absence-ends-track"),
    ],
)
def test_absence_longer_than_max_age_ends_with_leave(gap_frames, expect_leave):
    tracker = IoUTracker(max_age_s=3.0, min_hits=2)
    box = (200, 100, 40, 80)
    frames = [(0.0, [box]), (1.0, [box]), (2.0, [box])]
    frames += [(2.0 + k, []) for k in range(1, gap_frames + 1)]
    frames += [(3.0 + gap_frames, [box])]
    confirmed, ended = _run(tracker, frames)
    assert confirmed == [(1.0, 1)]
    if expect_leave:
        assert ended == [(6.0, 1, 2.0)], "leave reported once, at last sighting"
        assert [tr.track_id for tr in tracker.tracks] == [2], "return is a new track"
    else:
        assert ended == []
        assert [tr.track_id for tr in tracker.tracks] == [1]


def test_single_detection_never_confirmed_or_reported():
    tracker = IoUTracker(max_age_s=2.0, min_hits=2)
    confirmed, ended = _run(tracker, [(0.0, [(10, 10, 30, 60)])] + [(float(i), []) for i in range(1, 5)])
    assert confirmed == [] and ended == []
    assert tracker.tracks == []


def test_two_people_keep_separate_ids_when_crossing_nearby():
    tracker = IoUTracker(max_age_s=3.0, min_hits=1)
    for i in range(6):
        a = (100 + 10 * i, 100, 40, 80)
        b = (300 - 10 * i, 100, 40, 80)
        tracker.update([a, b], float(i))
    by_x = sorted(tracker.tracks, key=lambda tr: tr.bbox[0])
    assert [tr.track_id for tr in by_x] == [1, 2]


def test_max_age_is_time_not_frames():
    """At 4 fps, 8 missed frames are 2 s: within a 3 s max_age the track survives."""
    tracker = IoUTracker(max_age_s=3.0, min_hits=2)
    box = (50, 50, 40, 80)
    frames = [(0.0, [box]), (0.25, [box])] + [(0.25 + 0.25 * k, []) for k in range(1, 9)]
    frames.append((2.5, [box]))
    confirmed, ended = _run(tracker, frames)
    assert ended == [] and [tr.track_id for tr in tracker.tracks] == [1]


def test_finish_ends_confirmed_tracks_only():
    tracker = IoUTracker(min_hits=2)
    tracker.update([(0, 0, 40, 80), (300, 0, 40, 80)], 0.0)
    tracker.update([(0, 0, 40, 80)], 1.0)
    assert [tr.track_id for tr in tracker.finish()] == [1]
    assert tracker.tracks == []


@pytest.mark.parametrize("field,value", [("max_age_s", 0), ("min_hits", 0)])
def test_bad_tracker_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        IoUTracker(**{field: value})
