"""Count lines: crossings of confirmed tracks counted once per track and direction, with
no count from jitter near a line; and line_cross events from real footage."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from model.cv import CVAnalyzer, CVConfig
from model.cv.events import EVENT_KINDS
from model.cv.lines import CountLine, LineCounter
from tests.model.cv.cv_footage import run_chunks, sample_video

SIZE = (640, 480)
# Horizontal line across the middle; walking from (0.1, .5) to (0.9, .5) (rightwards on
# the image), "right" is below it: people walking down the image go in.
DOOR = CountLine("door", ((0.1, 0.5), (0.9, 0.5)), in_side="right", anchor="center")


def _walk(counter: LineCounter, track_id: int, ys: list[float], confirmed=True,
          x: float = 300.0, t0: float = 0.0):
    out = []
    for i, y in enumerate(ys):
        box = (int(x), int(y - 40), 40, 80)  # centre at (x + 20, y)
        ok = confirmed if isinstance(confirmed, bool) else confirmed[i]
        out += counter.observe(track_id, box, t0 + i, ok, SIZE)
    return out


def test_walking_down_through_the_line_counts_one_in():
    counter = LineCounter([DOOR])
    crossings = _walk(counter, 1, [150, 190, 230, 270, 310])
    assert [(c.line, c.direction, c.track_id) for c in crossings] == [("door", "in", 1)]
    assert counter.counts == {"door": {"in": 1, "out": 0}}


def test_walking_up_counts_out():
    counter = LineCounter([DOOR])
    _walk(counter, 1, [330, 290, 250, 210, 170])
    assert counter.counts == {"door": {"in": 0, "out": 1}}


def test_jitter_near_the_line_counts_nothing():
    """Standing on the line: the centre wobbles 8 px either side, inside the dead band."""
    counter = LineCounter([DOOR])
    _walk(counter, 1, [232, 248, 233, 247, 232, 248, 240, 231, 249] * 4)
    assert counter.counts == {"door": {"in": 0, "out": 0}}


def test_one_track_counts_once_per_direction_however_it_wobbles_across():
    counter = LineCounter([DOOR])
    # In, then back and forth across the line by more than the dead band.
    _walk(counter, 1, [180, 300, 200, 300, 200, 300])
    assert counter.counts == {"door": {"in": 1, "out": 1}}
    _walk(counter, 2, [180, 300], t0=10)  # another person: counted on their own
    assert counter.counts == {"door": {"in": 2, "out": 1}}


def test_passing_beside_the_segment_is_no_crossing():
    counter = LineCounter([DOOR])
    _walk(counter, 1, [150, 240, 330], x=620)  # x = 640 px: right of the line's end
    assert counter.counts == {"door": {"in": 0, "out": 0}}


def test_crossing_before_confirmation_counts_when_confirmed_only():
    counter = LineCounter([DOOR])
    early = _walk(counter, 1, [150, 330, 340], confirmed=[False, False, True])
    assert [c.direction for c in early] == ["in"] and counter.counts["door"]["in"] == 1
    _walk(counter, 2, [150, 330], confirmed=False)
    counter.forget(2)  # dropped without ever being confirmed
    assert counter.counts["door"]["in"] == 1


def test_bottom_anchor_counts_the_feet():
    floor = CountLine("floor", ((0.0, 0.5), (1.0, 0.5)), anchor="bottom")
    counter = LineCounter([floor])
    # Box centres stay above y=240 (0.5): only the feet (centre + 40 px) cross it.
    _walk(counter, 1, [150, 180, 210, 230])
    assert counter.counts == {"floor": {"in": 1, "out": 0}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "a", "points": [[0, 0], [1.5, 1]]}, "points"),
        ({"name": "a", "points": [[0.5, 0.5], [0.5, 0.5]]}, "points"),
        ({"name": "a", "points": [[0, 0], [1, 1]], "in_side": "up"}, "in_side"),
        ({"name": "a", "points": [[0, 0], [1, 1]], "anchor": "head"}, "anchor"),
        ({"name": "", "points": [[0, 0], [1, 1]]}, "name"),
    ],
)
def test_bad_count_line_names_the_field_and_value(spec, field):
    with pytest.raises(ValidationError, match=field):
        TypeAdapter(CountLine).validate_python(spec)


def test_duplicate_line_names_refused():
    with pytest.raises(ValueError, match="count_lines.*door"):
        LineCounter([DOOR, DOOR])


def test_line_cross_events_from_real_footage(vtest_path):
    """vtest.avi: people walk left and right across a vertical line in the middle."""
    frames, times = sample_video(str(vtest_path), 1.0, 640)
    frames, times = frames[:40], times[:40]
    middle = CountLine("middle", ((0.5, 0.0), (0.5, 1.0)), in_side="right")
    an = CVAnalyzer(CVConfig(tamper_enabled=False), lines=[middle])
    events = run_chunks(an, frames, times, 0.0)
    crosses = [e for e in events if e.kind == "line_cross"]
    assert "line_cross" in EVENT_KINDS
    assert crosses, "someone crosses the middle of the view in 40 s"
    for e in crosses:
        assert e.t_start == e.t_end and e.track_id == e.details["track_id"]
        assert e.details["line"] == "middle" and e.details["direction"] in ("in", "out")
        assert e.thumbnail_jpeg[:2] == b"\xff\xd8"
    pairs = [(e.track_id, e.details["direction"]) for e in crosses]
    assert len(pairs) == len(set(pairs)), "once per track and direction"
    enters = {e.track_id for e in events if e.kind == "person_enter"}
    assert {e.track_id for e in crosses} <= enters, "confirmed tracks only"
    counts = an.stats()["line_counts"]["middle"]
    assert counts["in"] + counts["out"] == len(crosses)
