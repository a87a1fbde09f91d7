"""Detector parts: box geometry, MOG2 motion regions, HOG on regions, thumbnails, events."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.cv.events import EventBuilder, point_event
from model.cv.geometry import iou, merge_overlapping, nms, pad_box
from model.cv.motion import MotionDetector
from model.cv.people import PeopleDetector
from model.cv.thumbnails import render_thumbnail
from tests.model.cv.cv_footage import sample_video


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 10, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),
        ((0, 0, 10, 10), (2, 2, 4, 4), 16 / 100),
    ],
)
def test_iou_table(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)


def test_nms_keeps_best_of_overlapping_and_separate_boxes():
    boxes = [(0, 0, 40, 80), (4, 2, 40, 80), (200, 0, 40, 80)]
    assert nms(boxes, [0.6, 0.9, 0.5], 0.3) == [1, 2]


def test_merge_joins_substantial_overlaps_only():
    merged = merge_overlapping([(0, 0, 40, 80), (5, 5, 40, 80), (38, 0, 40, 80)])
    assert sorted(merged) == [(0, 0, 45, 85), (38, 0, 40, 80)]


def test_pad_box_grows_to_minimum_and_clips_to_frame():
    assert pad_box((0, 0, 10, 10), 0.0, 36, 72, 640, 480) == (0, 0, 23, 41)
    assert pad_box((-500, 0, 10, 10), 0.0, 36, 72, 640, 480)[2] == 0


def test_motion_regions_follow_a_moving_object_and_not_a_static_scene():
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 120, (240, 320, 3), dtype=np.uint8)
    det = MotionDetector(history=50)
    for _ in range(10):
        still = det.apply(scene)
    assert still.regions == () and still.fraction < 0.001
    frame = scene.copy()
    frame[100:160, 200:230] = 250  # a bright 30 x 60 object appears
    moved = det.apply(frame)
    assert len(moved.regions) == 1
    x, y, w, h = moved.regions[0]
    assert abs(x - 200) <= 3 and abs(y - 100) <= 3 and abs(w - 30) <= 6 and abs(h - 60) <= 6
    assert moved.fraction == pytest.approx(30 * 60 / (240 * 320), rel=0.3)


def test_hog_finds_people_only_inside_given_regions(vtest_path):
    frames, _ = sample_video(str(vtest_path), 1.0, 640)
    frame = frames[30]
    people = PeopleDetector()
    everywhere = people.detect(frame, [(0, 0, 320, 240), (320, 0, 320, 240),
                                       (0, 240, 320, 240), (320, 240, 320, 240)])
    assert len(everywhere) >= 3
    target = everywhere[0].bbox
    local = people.detect(frame, [target])
    assert local and max(iou(d.bbox, target) for d in local) > 0.5
    assert people.detect(frame, []) == []
    grass = (20, 380, 200, 90)  # lawn in the foreground: no one there
    assert people.detect(frame, [grass]) == []


def test_thumbnail_is_jpeg_with_box_drawn_and_frame_untouched():
    frame = np.full((480, 640, 3), 128, np.uint8)
    before = frame.copy()
    jpeg = render_thumbnail(frame, [(100, 100, 60, 120)], "person_enter #1", 12.5, 1.7e9,
                            max_width=320)
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)
    edge = img[80, 50]  # left edge of the box at half scale: (50, 50) .. (80, 110)
    assert edge[1] > 180 and edge[0] < 100, "green box line"
    assert abs(int(img[80, 65][1]) - 128) < 20, "inside the box is the frame"
    assert np.array_equal(frame, before)


def test_event_builder_emits_start_then_end_with_same_key_and_best_thumbnail():
    renders = []

    def render(boxes, label, t):
        renders.append((tuple(boxes), label, t))
        return f"jpeg@{t}".encode()

    b = EventBuilder(wall_origin=100.0)
    b.start("person_enter", "person_enter:7", 3.0, 3.0, track_id=7)
    b.offer("person_enter:7", 3.0, 0.6, (1, 2, 3, 6), 1, render)
    b.offer("person_enter:7", 4.0, 0.9, (2, 2, 3, 6), 1, render)
    b.offer("person_enter:7", 5.0, 0.7, (3, 2, 3, 6), 1, render)
    (start,) = b.started("person_enter:7")
    assert start.t_end is None and start.thumbnail_jpeg == b"jpeg@4.0"
    end = b.end("person_enter:7")
    assert (end.t_start, end.t_end, end.wall_end) == (3.0, 5.0, 105.0)
    assert end.key == start.key and end.bbox == (2, 2, 3, 6) and end.confidence == 0.9
    assert [r[2] for r in renders] == [3.0, 4.0], "only better frames are rendered"
    leave = point_event(end, "person_leave", "person_leave:7")
    assert (leave.t_start, leave.t_end, leave.details["entered_t"]) == (5.0, 5.0, 3.0)
    assert b.end("person_enter:7") is None


def test_condition_event_closes_after_gap():
    b = EventBuilder()
    b.start("motion", "motion:1", 0.0, 0.0)
    b.offer("motion:1", 1.0, 0.5, None, 2, lambda *a: b"")
    assert b.end_stale(("motion",), 3.0, gap_s=3.0) == []
    (ended,) = b.end_stale(("motion",), 4.5, gap_s=3.0)
    assert (ended.t_start, ended.t_end, ended.count) == (0.0, 1.0, 2)


def test_full_scan_finds_people_without_motion(vtest_path):
    """The first frame of a stream has no motion; the whole-frame scan still sees people."""
    frames, _ = sample_video(str(vtest_path), 1.0, 640)
    people = PeopleDetector()
    found = people.detect_full(frames[30])
    assert len(found) >= 3
    empty = np.median(frames[::8], axis=0).astype(np.uint8)
    assert len(people.detect_full(empty)) <= 1, "an empty scene gives (almost) nothing"
