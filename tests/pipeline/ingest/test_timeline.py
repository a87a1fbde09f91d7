"""Timeline: stream times never go backwards whatever pts the camera sends."""

from __future__ import annotations

import pytest

from pipeline.ingest.timeline import Timeline


class FakeClock:
    """Wall clock under test control (the only fake: real time would make this flaky)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stamps(timeline: Timeline, pts: list[float | None], clock=None, dt: float = 0.04):
    out = []
    for p in pts:
        out.append(round(timeline.stamp(p), 6))
        if clock is not None:
            clock.now += dt
    return out


@pytest.mark.parametrize(
    ("name", "pts", "expected"),
    [
        ("plain", [10.0, 10.04, 10.08], [0.0, 0.04, 0.08]),
        ("missing pts step on", [None, 0.04, None, 0.12], [0.0, 0.04, 0.08, 0.12]),
        ("b-frame reorder held", [0.0, 0.12, 0.08, 0.16], [0.0, 0.12, 0.12, 0.16]),
        ("reset continues", [5.0, 5.04, 0.0, 0.04], [0.0, 0.04, 0.08, 0.12]),
        ("forward gap kept", [0.0, 0.04, 3.0], [0.0, 0.04, 3.0]),
    ],
)
def test_file_times_are_relative_and_never_go_back(name, pts, expected):
    assert stamps(Timeline(live=False), pts) == expected, name


def test_file_restart_after_loop_continues_one_step_later():
    timeline = Timeline(live=False)
    first = stamps(timeline, [0.0, 0.04, 0.08])
    timeline.restart()
    assert stamps(timeline, [0.0, 0.04]) == [0.12, 0.16]
    assert first == [0.0, 0.04, 0.08]


def test_live_times_follow_pts_anchored_at_first_frame_wall_clock():
    clock = FakeClock()
    timeline = Timeline(live=True, clock=clock)
    # first RTP frame without pts, then pts in a 90 kHz-like base starting anywhere
    got = stamps(timeline, [None, 7.04, 7.08, 7.12], clock, dt=0.01)
    assert timeline.wall_origin == 1000.0
    assert got == [0.0, 0.04, 0.08, 0.12]


def test_live_clock_jump_reanchors_on_wall_clock_without_going_back():
    clock = FakeClock()
    timeline = Timeline(live=True, max_skew=2.0, clock=clock)
    stamps(timeline, [0.0, 1.0, 2.0], clock, dt=1.0)
    clock.now = 1003.0
    assert timeline.stamp(-500.0) == pytest.approx(3.0)  # camera clock reset backwards
    clock.now = 1004.0
    assert timeline.stamp(10_000.0) == pytest.approx(4.0)  # camera clock leapt ahead
    assert timeline.reanchors == 2


def test_live_reconnect_resumes_at_wall_clock_after_outage():
    clock = FakeClock()
    timeline = Timeline(live=True, clock=clock)
    stamps(timeline, [0.0, 0.04, 0.08], clock, dt=0.04)
    timeline.restart()
    clock.now += 3.0  # outage; the restarted server's pts start at 0 again
    t = timeline.stamp(0.0)
    assert t == pytest.approx(3.12, abs=1e-6)
    assert timeline.stamp(0.04) == pytest.approx(t + 0.04)


def test_a_restarted_live_camera_continues_its_stream_time_from_the_stored_origin():
    now = [1_795_000_100.0]
    tl = Timeline(live=True, clock=lambda: now[0], origin=1_795_000_000.0)
    assert tl.stamp(5.0) == pytest.approx(100.0)  # t continues, not 0 again
    now[0] += 1.0
    assert tl.stamp(6.0) == pytest.approx(101.0)
    assert tl.wall_origin == 1_795_000_000.0


def test_a_re_read_file_keeps_the_wall_origin_of_its_first_read():
    tl = Timeline(live=False, clock=lambda: 1_795_000_086.0, origin=1_795_000_000.0)
    assert tl.wall_origin == 1_795_000_000.0 and tl.stamp(0.0) == 0.0
