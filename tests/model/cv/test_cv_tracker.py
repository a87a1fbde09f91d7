"""Tracker tests on synthetic detections: identity, confirmation, occlusion, duplicates,
gaps and leaving (pure Python, milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from model.cv.geometry import merge_contained
from model.cv.kalman import BoxKalman
from model.cv.tracker import ByteTracker

SURE = 0.7  # a high-score detection that does not confirm on its own (confirm_score 0.85)


def _run(tracker: ByteTracker, frames: list[tuple[float, list]], score: float = SURE):
    confirmed, ended = [], []
    for t, boxes in frames:
        upd = tracker.update(boxes, t, [score] * len(boxes))
        confirmed += [(t, tr.track_id) for tr in upd.confirmed]
        ended += [(t, tr.track_id, tr.last_seen) for tr in upd.ended]
    return confirmed, ended


def _ids_at(tracker: ByteTracker, t: float) -> dict[int, tuple]:
    return {tr.track_id: tr.bbox for tr in tracker.tracks if tr.last_seen == t}


def test_slowly_moving_box_keeps_its_id():
    tracker = ByteTracker(max_age_s=3.0, min_hits=2)
    for i in range(10):
        tracker.update([(100 + 5 * i, 50, 40, 80)], float(i), [SURE])
    assert [tr.track_id for tr in tracker.tracks] == [1]
    assert tracker.tracks[0].hits == 10


def test_fast_walker_at_one_fps_matched_by_distance_fallback():
    """At 1 fps a person moves more than their width; IoU is 0 but identity must hold."""
    tracker = ByteTracker(iou_threshold=0.2, max_center_dist=0.8, max_age_s=3.0)
    for i in range(5):
        tracker.update([(100 + 45 * i, 50, 40, 80)], float(i), [SURE])
    assert [tr.track_id for tr in tracker.tracks] == [1]


def test_kalman_predicts_a_walker_through_a_three_second_occlusion():
    """40 px/s to the right (half a box height per second): after 3 s unseen the walker
    is 2 box heights from where they vanished, out of reach without a velocity."""
    tracker = ByteTracker(max_center_dist=1.0, max_age_s=4.0)
    frames = [(float(i), [(100 + 40 * i, 100, 40, 80)]) for i in range(6)]
    frames += [(float(i), []) for i in (6, 7, 8)]
    frames += [(float(i), [(100 + 40 * i, 100, 40, 80)]) for i in (9, 10)]
    confirmed, ended = _run(tracker, frames)
    assert confirmed == [(1.0, 1)] and ended == []
    assert list(_ids_at(tracker, 10.0)) == [1], "the same person continues"
    vx, vy = tracker.tracks[0].velocity
    assert vx == pytest.approx(40, rel=0.15) and abs(vy) < 5


def test_kalman_prediction_uses_seconds_not_frames():
    kf = BoxKalman((0, 0, 40, 80), 0.0)
    for t in (1.0, 2.0, 3.0):
        kf.predict(t)
        kf.update((int(20 * t), 0, 40, 80))
    assert kf.box_at(5.0)[0] == pytest.approx(100, abs=8)  # 2 s later, 20 px/s
    assert kf.box_at(3.5)[0] == pytest.approx(70, abs=6)  # half a second at 4 fps


def test_two_people_crossing_keep_their_ids():
    """Walking towards each other at 1 fps, overlapping for a frame; ids do not swap."""
    tracker = ByteTracker(max_age_s=3.0, min_hits=1)
    for i in range(9):
        a = (100 + 30 * i, 100, 40, 80)  # rightwards
        b = (340 - 30 * i, 110, 40, 80)  # leftwards, a little lower
        tracker.update([a, b], float(i), [SURE, SURE])
    right = {tr.track_id: tr.velocity[0] for tr in tracker.tracks}
    assert len(right) == 2
    assert right[1] > 20 and right[2] < -20, "each id kept its own direction"


def test_standing_person_stays_one_track_for_a_minute():
    """Jittery boxes of one still person, with a missed detection now and then."""
    rng = np.random.default_rng(1)
    tracker = ByteTracker(max_age_s=4.0, min_hits=2)
    for i in range(60):
        if i % 7 == 3:
            tracker.update([], float(i), [])
            continue
        jx, jy, jh = (int(v) for v in rng.integers(-4, 5, 3))
        tracker.update([(300 + jx, 200 + jy, 40, 90 + jh)], float(i), [SURE])
    assert [tr.track_id for tr in tracker.tracks] == [1]
    assert tracker.people_seen == 1 and tracker.tracks[0].duration == 58.0  # t=59 missed


def test_part_boxes_of_one_person_merge_into_one_track():
    """Whole body plus head-and-torso plus legs boxes of one person: one person."""
    tracker = ByteTracker(min_hits=2)
    for i in range(4):
        x = 200 + 10 * i
        body = (x, 100, 50, 120)
        torso = (x + 8, 104, 34, 62)
        legs = (x + 10, 170, 30, 48)
        tracker.update([torso, body, legs], float(i), [0.9, 0.7, 0.8])
    assert len(tracker.tracks) == 1 and tracker.people_seen == 1
    assert tracker.tracks[0].bbox[2:] == (50, 120), "the whole-body box is kept"
    assert tracker.tracks[0].best_score == 0.9, "with the best score of its parts"


def test_part_box_while_body_missed_starts_no_new_person():
    tracker = ByteTracker(min_hits=2)
    for i in range(3):
        tracker.update([(200, 100, 50, 120)], float(i), [SURE])
    tracker.update([(208, 104, 34, 62)], 3.0, [SURE])  # only the torso this time
    tracker.update([(200, 100, 50, 120)], 4.0, [SURE])
    assert [tr.track_id for tr in tracker.tracks] == [1] and tracker.people_seen == 1


@pytest.mark.parametrize(
    ("boxes", "kept"),
    [
        pytest.param([(0, 0, 50, 120), (8, 4, 34, 62)], [0], id="part-inside-body-merged"),
        pytest.param([(0, 0, 100, 120), (2, 2, 45, 110), (52, 5, 45, 110)], [1, 2],
                     id="group-box-around-two-people-dropped"),
        pytest.param([(0, 0, 50, 120), (30, 0, 50, 120)], [0, 1], id="overlap-not-inside"),
    ],
)
def test_merge_contained_table(boxes, kept):
    assert [i for i, _ in merge_contained(boxes, [0.6] * len(boxes), 0.8)] == kept


@pytest.mark.parametrize(
    ("score", "expect_confirmed"),
    [pytest.param(0.95, True, id="high-score-pass-confirms"),
     pytest.param(0.7, False, id="ordinary-score-needs-min-hits")],
)
def test_fast_two_sample_pass_at_one_fps(score, expect_confirmed):
    """Seen once entering and once leaving: with min_hits=3 only sure detections count."""
    tracker = ByteTracker(min_hits=3, confirm_score=0.85)
    confirmed, ended = _run(tracker, [(0.0, [(50, 100, 40, 80)]), (1.0, [(120, 100, 40, 80)])]
                            + [(float(t), []) for t in range(2, 9)], score=score)
    assert bool(confirmed) == expect_confirmed
    assert bool(ended) == expect_confirmed, "a confirmed pass also leaves"
    if expect_confirmed:
        assert confirmed == [(0.0, 1)] and ended[0][2] == 1.0


def test_still_detection_does_not_confirm_on_score_alone():
    tracker = ByteTracker(min_hits=2, confirm_score=0.85)
    upd = tracker.update([(50, 100, 40, 80)], 0.0, [0.99], support=[False])
    assert upd.confirmed == () and not tracker.tracks[0].confirmed


def test_low_score_detection_continues_a_track_but_starts_none():
    tracker = ByteTracker(high_score=0.6, min_hits=1)
    tracker.update([(100, 100, 40, 80)], 0.0, [0.7])
    upd = tracker.update([(104, 100, 40, 80), (400, 100, 40, 80)], 1.0, [0.4, 0.4])
    assert [(tr.track_id, d) for tr, d in upd.matched] == [(1, 0)]
    assert len(tracker.tracks) == 1, "a low box far from any track is clutter"


def test_gap_in_frame_times_ends_all_tracks_where_last_seen():
    tracker = ByteTracker(max_age_s=4.0, min_hits=1)
    box = (100, 100, 40, 80)
    tracker.update([box], 0.0, [SURE])
    tracker.update([box], 1.0, [SURE])
    upd = tracker.update([box], 11.0, [SURE])  # 10 s without frames, same place
    assert [(tr.track_id, tr.last_seen) for tr in upd.ended] == [(1, 1.0)]
    assert [tr.track_id for tr in tracker.tracks] == [2], "after a gap: a new sighting"


@pytest.mark.parametrize(
    ("gap_frames", "expect_leave"),
    [
        pytest.param(1, False, id="brief-miss-keeps-track"),
        pytest.param(3, False, id="miss-equal-to-max-age-keeps-track"),
        pytest.param(5, True, id="long-absence-ends-track"),
    ],
)
def test_absence_longer_than_max_age_ends_with_leave(gap_frames, expect_leave):
    tracker = ByteTracker(max_age_s=3.0, min_hits=2)
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
    tracker = ByteTracker(max_age_s=2.0, min_hits=2)
    confirmed, ended = _run(tracker, [(0.0, [(10, 10, 30, 60)])]
                            + [(float(i), []) for i in range(1, 5)])
    assert confirmed == [] and ended == []
    assert tracker.tracks == [] and tracker.people_seen == 0


def test_max_age_is_time_not_frames():
    """At 4 fps, 8 missed frames are 2 s: within a 3 s max_age the track survives."""
    tracker = ByteTracker(max_age_s=3.0, min_hits=2)
    box = (50, 50, 40, 80)
    frames = [(0.0, [box]), (0.25, [box])] + [(0.25 + 0.25 * k, []) for k in range(1, 9)]
    frames.append((2.5, [box]))
    confirmed, ended = _run(tracker, frames)
    assert ended == [] and [tr.track_id for tr in tracker.tracks] == [1]


def test_finish_ends_confirmed_tracks_only():
    tracker = ByteTracker(min_hits=2)
    tracker.update([(0, 0, 40, 80), (300, 0, 40, 80)], 0.0, [SURE, SURE])
    tracker.update([(0, 0, 40, 80)], 1.0, [SURE])
    assert [tr.track_id for tr in tracker.finish()] == [1]
    assert tracker.tracks == []


@pytest.mark.parametrize("field,value", [("max_age_s", 0), ("min_hits", 0)])
def test_bad_tracker_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ByteTracker(**{field: value})


# --- appearance, recovery of lost tracks, continuation, walking out -----------------------

def _look(*weights: float) -> np.ndarray:
    """A synthetic appearance descriptor: the same weights over the first bins of both
    parts (torso, legs); two looks with disjoint bins have similarity 0."""
    from model.cv.appearance import PART_BINS

    part = np.zeros(PART_BINS, np.float32)
    part[: len(weights)] = weights
    part /= part.sum()
    return np.concatenate([part, part])


RED, BLUE = _look(1.0), _look(0.0, 1.0)
# similarity(RED, HALF) = sqrt(0.49) = 0.7: between the appearance gate (0.6) and the
# recovery threshold (0.8) of the defaults
HALF = _look(0.49, 0.51)


def _walker(t: float, x0: float = 100, vx: float = 40) -> tuple:
    return (int(x0 + vx * t), 100, 40, 80)


def _hidden_then_far(look: np.ndarray) -> tuple[ByteTracker, list]:
    """A walker seen t=0..5 at 40 px/s, hidden at t=6 and 7, then 170 px (2.1 box heights)
    beyond where the filter expects them at t=8 and t=9: outside the ordinary gate (1 box
    height x sqrt(s unseen)), inside the recovery gate (2 x sqrt(s unseen))."""
    tracker = ByteTracker(max_age_s=4.0)
    confirmed = []
    for t in range(6):
        upd = tracker.update([_walker(t)], float(t), [SURE], features=[RED])
        confirmed += [tr.track_id for tr in upd.confirmed]
    for t in (6, 7):
        tracker.update([], float(t), [], features=[])
    for t in (8, 9):
        box = (int(100 + 40 * t + 170), 100, 40, 80)
        upd = tracker.update([box], float(t), [SURE], features=[look])
        confirmed += [tr.track_id for tr in upd.confirmed]
    return tracker, confirmed


def test_walker_hidden_for_two_frames_is_recovered_by_appearance():
    tracker, confirmed = _hidden_then_far(RED)
    assert confirmed == [1], "one person, confirmed once"
    assert list(_ids_at(tracker, 9.0)) == [1], "the lost track took the detection up again"
    assert tracker.tracks[0].recovered == 1 and tracker.people_seen == 1


def test_someone_else_where_a_lost_walker_should_be_is_a_new_person():
    tracker, confirmed = _hidden_then_far(BLUE)
    assert confirmed == [1, 2], "a different-looking person is not the lost walker"
    assert list(_ids_at(tracker, 9.0)) == [2] and tracker.recoveries == 0


def test_track_starting_where_a_lost_one_vanished_is_its_continuation():
    """Not alike enough to be taken up at first sight (0.7 < recovery's 0.8), but not
    clearly someone else (>= the 0.6 gate): when the new track earns confirmation it is
    folded into the lost one, which keeps its identity; nobody entered."""
    tracker, confirmed = _hidden_then_far(HALF)
    assert confirmed == [1]
    assert list(_ids_at(tracker, 9.0)) == [1] and len(tracker.tracks) == 1
    track = tracker.tracks[0]
    assert track.recovered == 1 and track.hits == 8 and tracker.people_seen == 1


def test_appearance_gate_keeps_a_lost_track_off_a_passer_by():
    """A red walker missed for one frame; a blue passer-by appears within the distance
    gate of where red should be. Without appearance the red track would take the box."""
    tracker = ByteTracker(max_age_s=4.0)
    for t in range(4):
        tracker.update([_walker(t)], float(t), [SURE], features=[RED])
    passer = (int(100 + 40 * 5 + 30), 110, 40, 80)  # 0.4 box heights from red's prediction
    tracker.update([passer], 5.0, [SURE], features=[BLUE])
    red = next(tr for tr in tracker.tracks if tr.track_id == 1)
    assert red.last_seen == 3.0, "red was not given the passer-by's box"
    assert [tr.track_id for tr in tracker.tracks if tr.last_seen == 5.0] == [2]
    blind = ByteTracker(max_age_s=4.0)
    for t in range(4):
        blind.update([_walker(t)], float(t), [SURE])
    blind.update([passer], 5.0, [SURE])
    assert blind.tracks[0].last_seen == 5.0, "the control: by position alone it is taken"


def test_occluded_sighting_does_not_change_a_tracks_appearance():
    tracker = ByteTracker(max_age_s=4.0)
    tracker.update([_walker(0)], 0.0, [SURE], features=[RED])
    other = (_walker(1)[0] + 10, 100, 40, 80)  # overlaps the walker: mixed pixels
    tracker.update([_walker(1), other], 1.0, [SURE, SURE], features=[BLUE, BLUE])
    assert np.array_equal(tracker.tracks[0].feature, RED)


def test_walker_carried_out_of_the_frame_ends_at_once_and_the_next_is_an_entry():
    tracker = ByteTracker(max_age_s=4.0)
    size = (640, 480)
    ended = []
    for t in range(4):  # 60 px/s to the right, last seen at x=560 (centre 580)
        upd = tracker.update([_walker(t, 380, 60)], float(t), [SURE], frame_size=size)
        ended += upd.ended
    upd = tracker.update([], 4.0, [], frame_size=size)  # expected at centre 640: outside
    assert [tr.track_id for tr in upd.ended] == [1] and upd.ended[0].last_seen == 3.0
    confirmed = []
    for t in (5.0, 6.0):  # someone comes in at the same edge, walking left
        upd = tracker.update([(600 - 40 * int(t - 5), 100, 40, 80)], t, [SURE],
                             frame_size=size)
        confirmed += [tr.track_id for tr in upd.confirmed]
    assert confirmed == [2], "a new track: the first one walked out"
    still = ByteTracker(max_age_s=4.0)
    for t in range(4):
        still.update([_walker(t, 380, 60)], float(t), [SURE])
    assert not still.update([], 4.0, []).ended, "without a frame size it waits max_age_s"


def test_exposure_change_forgets_appearance():
    tracker = ByteTracker(max_age_s=4.0)
    for t in range(3):
        tracker.update([_walker(t)], float(t), [SURE], features=[RED])
    tracker.forget_appearance()
    assert tracker.tracks[0].feature is None
    tracker.update([_walker(3)], 3.0, [SURE], features=[BLUE])
    assert list(_ids_at(tracker, 3.0)) == [1], "the same person under the new light"
