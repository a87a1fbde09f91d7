"""Thumbnails carry their own event's kind and time: a person_leave shows the person's
last sighting labelled `person_leave`, not the enter's best frame and label."""

from __future__ import annotations

import cv2
import numpy as np

from model.cv.events import EventBuilder, point_event
from tests.model.cv.cv_footage import sample_video


def test_a_leave_is_drawn_at_the_last_sighting_with_its_own_label():
    drawn = []

    def render(boxes, label, t):
        drawn.append((label, t, list(boxes)))
        return f"{label}@{t}".encode()

    b = EventBuilder(wall_origin=100.0)
    b.start("person_enter", "person_enter:7", 3.0, 3.0, track_id=7)
    b.offer("person_enter:7", 3.0, 0.9, (1, 2, 3, 6), 1, render)  # the best frame
    b.offer("person_enter:7", 5.0, 0.4, (5, 2, 3, 6), 1, render)  # seen last here
    left = b.render_last("person_enter:7", "person_leave")
    enter = b.end("person_enter:7")
    leave = point_event(enter, "person_leave", "person_leave:7", left)
    assert enter.thumbnail_jpeg == b"person_enter #7@3.0"
    assert leave.thumbnail_jpeg == b"person_leave #7@5.0"
    assert drawn[-1] == ("person_leave #7", 5.0, [(5, 2, 3, 6)])
    assert point_event(enter, "person_leave", "k").thumbnail_jpeg is None, \
        "never the enter's labelled image"


def test_the_analyzer_labels_every_leave_as_a_leave(vtest_path):
    from model.cv import CVAnalyzer
    from model.cv.config import CVConfig

    frames, times = sample_video(str(vtest_path), 1.0, 640)
    analyzer = CVAnalyzer(CVConfig())
    events = analyzer.process(frames[:40], list(times[:40]), 0.0) + analyzer.flush()
    leaves = [e for e in events if e.kind == "person_leave"]
    assert leaves, "people leave within 40 s of vtest.avi"
    enters = {e.track_id: e for e in events if e.kind == "person_enter" and e.t_end}
    for leave in leaves:
        image = cv2.imdecode(np.frombuffer(leave.thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and leave.thumbnail_jpeg != enters[
            leave.track_id].thumbnail_jpeg
