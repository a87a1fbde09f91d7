"""CameraActivity: person presence, count and motion folded from CV event emissions."""

from __future__ import annotations

import pytest

from pipeline.alerts.camera_activity import ActivityState, CameraActivity
from pipeline.messages import Event


def ev(kind: str, t: float, t_end: float | None = None, track: int | None = None) -> Event:
    return Event(None, "lobby", kind, t, t_end, 1000.0 + t,
                 None if t_end is None else 1000.0 + t_end, track_id=track)


CASES = {
    "nothing happened": ([], ActivityState(0, False)),
    "a person enters": ([ev("person_enter", 1, track=1)], ActivityState(1, False)),
    "two people enter": ([ev("person_enter", 1, track=1), ev("person_enter", 2, track=2)],
                         ActivityState(2, False)),
    "the same track emitted twice counts once": (
        [ev("person_enter", 1, track=1), ev("person_enter", 1, track=1)],
        ActivityState(1, False)),
    "an enter that ends means they left": (
        [ev("person_enter", 1, track=1), ev("person_enter", 1, 4, track=1)],
        ActivityState(0, False)),
    "a person_leave of the track means they left": (
        [ev("person_enter", 1, track=1), ev("person_enter", 2, track=2),
         ev("person_leave", 5, 5, track=2)], ActivityState(1, False)),
    "motion starts": ([ev("motion", 1)], ActivityState(0, True)),
    "motion ends": ([ev("motion", 1), ev("motion", 1, 3)], ActivityState(0, False)),
    "a new motion while the old one is still open": (
        [ev("motion", 1), ev("motion", 5), ev("motion", 1, 4)], ActivityState(0, True)),
    "other kinds change nothing": ([ev("crowd", 1), ev("tamper_blocked", 2)],
                                   ActivityState(0, False)),
}


@pytest.mark.parametrize("events,expected", CASES.values(), ids=CASES.keys())
def test_state_from_events(events, expected):
    activity = CameraActivity()
    activity.apply(events)
    assert activity.state == expected
    assert activity.state.person == (expected.people > 0)


def test_apply_says_whether_the_state_changed_and_reset_clears_it():
    activity = CameraActivity()
    assert activity.apply([ev("person_enter", 1, track=1)]) is True
    assert activity.apply([ev("person_enter", 1, track=1)]) is False
    assert activity.apply([ev("crowd", 2)]) is False
    assert activity.reset() is True and activity.state == ActivityState()
    assert activity.reset() is False
