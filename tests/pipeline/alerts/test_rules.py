"""Table tests for the pure alert rules, the dedup key and the cooldown (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from pipeline.alerts.evaluator import AlertEvaluator, load_rules
from pipeline.alerts.rules import (
    CameraContext,
    Cooldown,
    RuleError,
    TimeWindow,
    dedup_key,
    evaluate_cv_event,
    evaluate_standing,
    parse_rule,
    point_in_polygon,
)

# 2026-11-23 00:00:00 UTC; t seconds after it are that many seconds past midnight.
MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Ev:
    kind: str
    t_start: float
    t_end: float | None = None
    track_id: int | None = 1
    confidence: float = 0.9
    bbox: tuple | None = (100, 100, 50, 100)
    count: int | None = None
    details: dict = field(default_factory=dict)


def ctx(**kw) -> CameraContext:
    kw.setdefault("camera", "lobby")
    kw.setdefault("wall_origin", MIDNIGHT)
    return CameraContext(**kw)


def hms(h: int, m: int = 0, s: int = 0) -> float:
    return h * 3600 + m * 60 + s


CASES = [
    # (name, rule, event, camera ctx kwargs, fires)
    ("person_any", {"kind": "person"}, Ev("person_enter", hms(12)), {}, True),
    ("person_leave_ignored", {"kind": "person"}, Ev("person_leave", hms(12)), {}, False),
    ("person_in_night_window", {"kind": "person", "params": {"window": "22:00-06:00"}},
     Ev("person_enter", hms(23, 30)), {}, True),
    ("person_after_midnight_in_wrapped_window",
     {"kind": "person", "params": {"window": "22:00-06:00"}}, Ev("person_enter", hms(2)), {},
     True),
    ("person_outside_window", {"kind": "person", "params": {"window": "22:00-06:00"}},
     Ev("person_enter", hms(12)), {}, False),
    ("person_window_in_camera_timezone",  # 23:30 UTC is 00:30 in Berlin (CET, winter)
     {"kind": "person", "params": {"window": "00:00-01:00"}}, Ev("person_enter", hms(23, 30)),
     {"timezone": "Europe/Berlin"}, True),
    # frame 640x480; box (100,100,50,100) has its feet at (125, 200) = (0.195, 0.417)
    ("person_feet_outside_triangle_zone",
     {"kind": "person", "params": {"zone": [[0, 0], [0.5, 0], [0.5, 0.5]]}},
     Ev("person_enter", 5), {"frame_size": (640, 480)}, False),
    ("person_in_triangle_zone",
     {"kind": "person", "params": {"zone": [[0, 0], [0.5, 0], [0, 0.9]]}},
     Ev("person_enter", 5), {"frame_size": (640, 480)}, True),
    ("person_outside_zone", {"kind": "person",
                             "params": {"zone": [[0.6, 0], [1, 0], [1, 1], [0.6, 1]]}},
     Ev("person_enter", 5), {"frame_size": (640, 480)}, False),
    ("person_in_named_zone", {"kind": "person", "params": {"zone": "door"}},
     Ev("person_enter", 5), {"frame_size": (640, 480),
                             "zones": {"door": [(0, 0), (0.3, 0), (0.3, 0.5), (0, 0.5)]}},
     True),
    ("loitering_outside_zone", {"kind": "loitering", "params": {"zone": "door"}},
     Ev("loitering", 10, t_end=100, bbox=(500, 300, 50, 100)),
     {"frame_size": (640, 480), "zones": {"door": [(0, 0), (0.3, 0), (0.3, 0.5)]}}, False),
    ("loitering_long_enough", {"kind": "loitering", "params": {"min_seconds": 30}},
     Ev("loitering", 10, t_end=45), {}, True),
    ("loitering_too_short", {"kind": "loitering", "params": {"min_seconds": 30}},
     Ev("loitering", 10, t_end=30), {}, False),
    ("loitering_open_event_uses_now", {"kind": "loitering", "params": {"min_seconds": 30}},
     Ev("loitering", 10), {"t_now": 50.0}, True),
    ("loitering_duration_from_details", {"kind": "loitering", "params": {"min_seconds": 30}},
     Ev("loitering", 10, details={"duration_s": 31}), {}, True),
    ("crowd_at_threshold", {"kind": "crowd", "params": {"min_count": 4}},
     Ev("crowd", 3, count=4), {}, True),
    ("crowd_below_threshold", {"kind": "crowd", "params": {"min_count": 4}},
     Ev("crowd", 3, count=3), {}, False),
    ("motion_off_hours", {"kind": "off_hours", "params": {"window": "20:00-07:00"}},
     Ev("motion", hms(21)), {}, True),
    ("motion_business_hours", {"kind": "off_hours", "params": {"window": "20:00-07:00"}},
     Ev("motion", hms(10)), {}, False),
    ("off_hours_from_camera_ctx", {"kind": "off_hours"}, Ev("person_enter", hms(3)),
     {"off_hours": ("12:00-13:00", "00:00-05:00")}, True),
    ("off_hours_rule_with_two_windows",
     {"kind": "off_hours", "params": {"window": ["12:00-13:00", "20:00-21:00"]}},
     Ev("motion", hms(20, 30)), {}, True),
    ("off_hours_without_any_window", {"kind": "off_hours"}, Ev("motion", hms(3)), {}, False),
    ("off_hours_kind_not_selected", {"kind": "off_hours", "params": {"kinds": ["motion"]}},
     Ev("person_enter", hms(3)), {"off_hours": ("00:00-05:00",)}, False),
    ("tamper_blocked", {"kind": "tamper"}, Ev("tamper_blocked", 7, track_id=None), {}, True),
    ("tamper_only_moved", {"kind": "tamper", "params": {"kinds": ["tamper_moved"]}},
     Ev("tamper_blurred", 7, track_id=None), {}, False),
    ("rule_for_other_camera", {"kind": "person", "camera": "yard"}, Ev("person_enter", 1), {},
     False),
    ("disabled_rule", {"kind": "person", "enabled": False}, Ev("person_enter", 1), {}, False),
]


@pytest.mark.parametrize("name,rule,event,ctx_kw,fires", CASES, ids=[c[0] for c in CASES])
def test_cv_rule_table(name, rule, event, ctx_kw, fires):
    r = parse_rule({"name": name, **rule})
    alert = evaluate_cv_event(r, event, ctx(**ctx_kw), thumbnail="thumbnails/lobby/x.jpg")
    assert (alert is not None) == fires
    if fires:
        assert alert.camera == "lobby" and alert.rule == name and alert.kind == event.kind
        assert alert.wall_time == pytest.approx(MIDNIGHT + event.t_start)
        assert alert.t == event.t_start and alert.thumbnail == "thumbnails/lobby/x.jpg"
        assert alert.dedup_key.startswith(f"lobby|{name}|")


def test_person_already_in_view_alerts_without_saying_it_entered():
    rule = parse_rule({"name": "p", "kind": "person"})
    there = evaluate_cv_event(rule, Ev("person_enter", 0.0,
                                       details={"in_view_at_start": True}), ctx())
    came = evaluate_cv_event(rule, Ev("person_enter", 5.0), ctx())
    assert there.message == ("person in view on lobby at 00:00:00 (t=0.0s) "
                             "(there when watching began)")
    assert came.message == "person entered on lobby at 00:00:05 (t=5.0s)"


def test_same_event_twice_has_same_dedup_key_and_other_track_differs():
    rule = parse_rule({"name": "p", "kind": "person"})
    a = evaluate_cv_event(rule, Ev("person_enter", 5.0, track_id=3), ctx())
    b = evaluate_cv_event(rule, Ev("person_enter", 5.0, track_id=3, confidence=0.5), ctx())
    c = evaluate_cv_event(rule, Ev("person_enter", 5.0, track_id=4), ctx())
    d = evaluate_cv_event(rule, Ev("person_enter", 5.0, track_id=3), ctx(wall_origin=MIDNIGHT + 99))
    assert a.dedup_key == b.dedup_key
    assert len({a.dedup_key, c.dedup_key, d.dedup_key}) == 3


def test_dedup_key_separates_camera_and_rule():
    keys = {dedup_key(c, r, "x") for c in ("a", "b") for r in ("r1", "r2")}
    assert len(keys) == 4


STANDING = [
    ("above_threshold", 0.8, 0.7, True),
    ("at_threshold", 0.7, 0.7, True),
    ("below_threshold", 0.69, 0.7, False),
]


@pytest.mark.parametrize("name,p,threshold,fires", STANDING, ids=[s[0] for s in STANDING])
def test_standing_question_threshold(name, p, threshold, fires):
    rule = parse_rule({"name": "fight", "kind": "standing",
                       "params": {"question": "Is anyone fighting?", "threshold": threshold}})
    alert = evaluate_standing(rule, p, "lobby", seq=4, t=64.0, wall_time=MIDNIGHT + 64)
    assert (alert is not None) == fires
    if fires:
        assert alert.score == p and alert.details["seq"] == 4
        assert alert.dedup_key == evaluate_standing(rule, 0.99, "lobby", 4, 64.0,
                                                    MIDNIGHT + 64).dedup_key


def test_standing_rejects_probability_out_of_range():
    rule = parse_rule({"name": "s", "kind": "standing", "params": {"question": "Fire?"}})
    with pytest.raises(RuleError, match="p_yes.*1.5"):
        evaluate_standing(rule, 1.5, "lobby", 0, 0.0, MIDNIGHT)


BAD_RULES = [
    ({"name": "Bad Name", "kind": "person"}, "rule.name", "Bad Name"),
    ({"name": "r", "kind": "person", "params": {"zone": [[0, 0], [2, 0], [0, 1]]}},
     "params.zone", "2"),
    ({"name": "r", "kind": "explode"}, "rule.kind", "explode"),
    ({"name": "r", "kind": "crowd", "params": {"min_count": 0}}, "params.min_count", "0"),
    ({"name": "r", "kind": "crowd", "params": {"min_count": "many"}}, "params.min_count", "many"),
    ({"name": "r", "kind": "person", "params": {"window": "25:00-01:00"}}, "params.window",
     "25:00"),
    ({"name": "r", "kind": "person", "params": {"zone": [[0, 0], [1, 1]]}}, "params.zone",
     "[[0, 0], [1, 1]]"),
    ({"name": "r", "kind": "person", "params": {"colour": "red"}}, "params.colour", "red"),
    ({"name": "r", "kind": "standing", "params": {"question": " "}}, "params.question", "' '"),
    ({"name": "r", "kind": "standing", "params": {"question": "q", "threshold": 2}},
     "params.threshold", "2"),
    ({"name": "r", "kind": "tamper", "params": {"kinds": ["motion"]}}, "params.kinds", "motion"),
]


@pytest.mark.parametrize("data,field_name,value", BAD_RULES, ids=[b[1] + "=" + b[2] for b in BAD_RULES])
def test_bad_rule_error_names_field_and_value(data, field_name, value):
    with pytest.raises(RuleError) as err:
        parse_rule(data)
    assert field_name in str(err.value) and value in str(err.value)


def test_time_window_wraps_midnight():
    w = TimeWindow.parse("22:00-06:00")
    assert [w.contains(datetime(2026, 1, 1, h).time()) for h in (21, 22, 3, 6)] == [
        False, True, True, False]


def test_cooldown_runs_on_the_moments_it_is_given_not_the_processing_clock():
    cd = Cooldown(60, clock=lambda: 0.0)  # the clock never moves: only `at` counts
    assert cd.allow("lobby", "r", at=100.0)
    assert not cd.allow("lobby", "r", at=130.0)
    assert cd.allow("yard", "r", at=130.0) and cd.allow("lobby", "other", at=130.0)
    assert not cd.allow("lobby", "r", at=159.9)
    assert cd.remaining("lobby", "r", at=159.9) == pytest.approx(0.1)
    assert cd.allow("lobby", "r", at=160.0)
    assert not cd.allow("lobby", "r", at=110.0)  # a late, earlier event within the window


def test_cooldown_is_bounded():
    cd = Cooldown(60, clock=lambda: 0.0, max_keys=3)
    for i in range(10):
        cd.allow(f"cam{i}", "r")
    assert cd.allow("cam0", "r")  # forgotten, so allowed again
    assert not cd.allow("cam9", "r")


def test_evaluator_applies_cooldown_per_camera_and_lists_standing_questions():
    ev = AlertEvaluator([parse_rule({"name": "p", "kind": "person"}),
                         parse_rule({"name": "s", "kind": "standing", "camera": "lobby",
                                     "params": {"question": "Fire?", "threshold": 0.5}})],
                        cooldown_s=30)
    events = [Ev("person_enter", 1, track_id=1), Ev("person_enter", 2, track_id=2)]
    assert len(ev.on_events(ctx(), events)) == 1  # second person within the cooldown
    assert len(ev.on_events(ctx(camera="yard"), events)) == 1
    assert len(ev.on_events(ctx(), [Ev("person_enter", 40, track_id=3)])) == 1
    assert ev.standing_questions("lobby") == [("s", "Fire?")]
    assert ev.standing_questions("yard") == []
    assert len(ev.on_standing("lobby", 3, 48.0, MIDNIGHT + 48, {"s": 0.9})) == 1
    assert ev.on_standing("lobby", 4, 64.0, MIDNIGHT + 64, {"s": 0.9}) == []  # cooldown
    assert len(ev.on_standing("lobby", 6, 96.0, MIDNIGHT + 96, {"s": 0.9})) == 1


def test_a_file_read_at_once_alerts_once_per_cooldown_of_its_own_time():
    """79.5 s of footage processed in a second: alerts follow the footage's clock."""
    ev = AlertEvaluator([parse_rule({"name": "p", "kind": "person"})], cooldown_s=20)
    entries = [Ev("person_enter", t, track_id=i) for i, t in enumerate((0, 5, 16, 24, 50, 79))]
    alerts = ev.on_events(ctx(), entries)
    assert [a.t for a in alerts] == [0.0, 24.0, 50.0, 79.0]


def test_evaluator_refuses_duplicate_rule_names():
    r = parse_rule({"name": "p", "kind": "person"})
    with pytest.raises(ValueError, match="duplicate.*'p'"):
        AlertEvaluator([r, r])


def test_zone_rule_without_frame_size_is_an_error_naming_it():
    rule = parse_rule({"name": "z", "kind": "person", "params": {"zone": [[0, 0], [1, 0], [1, 1]]}})
    with pytest.raises(RuleError, match="frame_size"):
        evaluate_cv_event(rule, Ev("person_enter", 1), ctx())


def test_point_in_polygon_square_and_concave():
    square = [(0, 0), (1, 0), (1, 1), (0, 1)]
    u_shape = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]
    assert point_in_polygon(0.5, 0.5, square) and not point_in_polygon(1.5, 0.5, square)
    assert point_in_polygon(0.5, 2, u_shape) and not point_in_polygon(1.5, 2, u_shape)


@dataclass(frozen=True)
class Section:
    rules: list
    standing_questions: list = field(default_factory=list)
    anomaly_threshold: float = 0.5


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    params: dict
    camera: str | None = None
    enabled: bool = True


def test_load_rules_merges_config_standing_questions_and_db_rows_skipping_bad_rows():
    cfg = Section(rules=[{"name": "night", "kind": "person", "params": {"window": "22:00-06:00"}}],
                  standing_questions=["Is anyone fighting? Answer yes or no."],
                  anomaly_threshold=0.7)
    rows = [Row("crowd5", "crowd", {"min_count": 5}, camera="lobby"),
            Row("bad", "crowd", {"min_count": -1}), Row("night", "tamper", {})]
    rules, errors = load_rules(cfg, rows)
    assert [r.name for r in rules] == ["night", "standing-0", "crowd5"]
    assert rules[1].params == {"question": "Is anyone fighting? Answer yes or no.",
                               "threshold": 0.7}
    assert rules[2].camera == "lobby"
    assert len(errors) == 2 and "min_count" in errors[0] and "'night'" in errors[1]


def test_load_rules_refuses_a_bad_config_rule_with_its_path():
    with pytest.raises(RuleError, match=r"alerts.rules\[0\].params.min_count"):
        load_rules(Section(rules=[{"name": "c", "kind": "crowd", "params": {"min_count": 0}}]))


def test_evaluator_reports_a_rule_it_cannot_evaluate_and_keeps_the_others():
    ev = AlertEvaluator([parse_rule({"name": "z", "kind": "person", "params": {"zone": "door"}}),
                         parse_rule({"name": "p", "kind": "person"})])
    alerts = ev.on_events(ctx(frame_size=(640, 480)), [Ev("person_enter", 1)])
    assert [a.rule for a in alerts] == ["p"]
    assert len(ev.errors) == 1 and "'door'" in ev.errors[0]
