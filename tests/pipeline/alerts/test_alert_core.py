"""The alert core as the alert actor runs it: the one rule set (config rules, the config's
standing questions, alert_rules rows), camera contexts from the config (zones, off-hours,
time zone) and the frame size events carry, rows committed through the relay. Real
SQLite; no Ray."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.alerts.core import AlertCore
from pipeline.alerts.ruleset import RuleSet
from pipeline.config import config_from_dict
from pipeline.messages import ChunkScores, Event
from storage import repo

TZ = "Europe/Berlin"
NIGHT = datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo(TZ)).timestamp()  # off-hours
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo(TZ)).timestamp()
SIZE = (640, 480)
# left half of the frame is the "door" zone
RULES = [
    {"name": "after-hours", "kind": "off_hours", "params": {"kinds": ["person_enter"]}},
    {"name": "at-door", "kind": "person", "params": {"zone": "door"}},
    {"name": "lingering", "kind": "loitering", "params": {"min_seconds": 20}},
    {"name": "crowded", "kind": "crowd", "params": {"min_count": 4}},
    {"name": "tampered", "kind": "tamper", "params": {}},
]


@pytest.fixture
def cfg(tmp_path):
    return config_from_dict({
        "data_dir": str(tmp_path),
        "camera_defaults": {"timezone": TZ, "off_hours": ["22:00-06:00"],
                            "zones": {"door": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}},
        "alerts": {"cooldown_s": 0, "rules": RULES,
                   "standing_questions": ["Is anyone lying on the floor? Answer yes or no."],
                   "anomaly_threshold": 0.7},
    })


def event(kind, wall, t=10.0, bbox=(100.0, 100.0, 50.0, 200.0), size=SIZE, **kw):
    return Event(None, "lobby", kind, t, kw.pop("t_end", t + 1.0), wall, wall + 1.0,
                 track_id=kw.pop("track_id", 1), confidence=0.9, bbox=bbox, frame_size=size,
                 **kw)


def fired(db, camera="lobby"):
    with db.session() as s:
        return sorted(a.rule for a in repo.list_alerts(s, after_id=0, camera=camera))


@pytest.mark.parametrize(("name", "ev", "rules"), [
    ("person at the door at night", event("person_enter", NIGHT), ["after-hours", "at-door"]),
    ("person at the door by day", event("person_enter", NOON), ["at-door"]),
    ("person outside the zone by day",
     event("person_enter", NOON, bbox=(500.0, 100.0, 50.0, 200.0)), []),
    ("loitering long enough", event("loitering", NOON, t=10.0, t_end=40.0), ["lingering"]),
    ("a short loiter", event("loitering", NOON, t=10.0, t_end=15.0), []),
    ("a crowd of five", event("crowd", NOON, count=5, track_id=None), ["crowded"]),
    ("a crowd of three", event("crowd", NOON, count=3, track_id=None), []),
    ("the view blocked", event("tamper_blocked", NOON, track_id=None, bbox=None), ["tampered"]),
])
def test_each_rule_kind_fires_through_the_alert_core(cfg, db, name, ev, rules):
    core = AlertCore(cfg, db)
    core.on_events("lobby", [ev])
    assert fired(db) == rules, name


def test_an_alerts_snapshot_is_the_moment_it_fired_not_the_events_later_best_frame(
        cfg, db, tmp_path):
    rel = "thumbnails/lobby/person_enter-00000010.0-k.jpg"
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(b"frame at t=10")
    AlertCore(cfg, db).on_events("lobby", [event("person_enter", NOON, thumbnail=rel)])
    (tmp_path / rel).write_bytes(b"a better frame at t=25")  # the event's end emission
    with db.session() as s:
        (alert,) = repo.list_alerts(s, after_id=0, camera="lobby")
    assert alert.thumbnail != rel and alert.thumbnail.startswith("thumbnails/lobby/alert-")
    assert (tmp_path / alert.thumbnail).read_bytes() == b"frame at t=10"


def test_a_zone_rule_reads_the_frame_size_the_event_carries(cfg, db):
    core = AlertCore(cfg, db)
    # the same box is in the left half of a 1280-wide frame, not of a 160-wide one
    core.on_events("lobby", [event("person_enter", NOON, bbox=(300.0, 10, 20, 40),
                                   size=(1280, 720))])
    core.on_events("yard", [event("person_enter", NOON + 5, bbox=(300.0, 10, 20, 40),
                                  size=(400, 300))])
    assert fired(db, "lobby") == ["at-door"] and fired(db, "yard") == []
    assert core.health()["rule_errors"] == []


def test_the_configs_standing_question_is_scored_at_anomaly_threshold(cfg, db):
    rules = RuleSet(cfg.alerts, db)
    assert rules.standing("lobby") == [
        ("standing-0", "Is anyone lying on the floor? Answer yes or no.")]
    core = AlertCore(cfg, db, rules)
    core.on_scores(ChunkScores("lobby", 3, 48.0, NOON, {"standing-0": 0.6}))
    assert fired(db) == []
    core.on_scores(ChunkScores("lobby", 4, 64.0, NOON + 16, {"standing-0": 0.8}))
    assert fired(db) == ["standing-0"]


def test_a_rule_added_to_the_table_reaches_the_standing_questions(cfg, db):
    clock = [0.0]
    rules = RuleSet(cfg.alerts, db, refresh_s=10, clock=lambda: clock[0])
    assert [n for n, _ in rules.standing("yard")] == ["standing-0"]
    with db.session() as s:
        repo.add_alert_rule(s, "smoke", "standing",
                            {"question": "Is there smoke? Answer yes or no."}, camera="yard")
    clock[0] = 11.0
    assert [n for n, _ in rules.standing("yard")] == ["standing-0", "smoke"]
    assert [n for n, _ in rules.standing("lobby")] == ["standing-0"]
