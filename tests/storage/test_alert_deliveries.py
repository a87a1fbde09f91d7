"""Per-sink alert delivery rows (MQTT's outbox), on SQLite and PostgreSQL."""

from __future__ import annotations

from storage import repo
from storage.records import NewAlert


def alert(i: int, camera: str = "lobby") -> NewAlert:
    return NewAlert(camera=camera, rule="r", kind="person_enter", message=f"m{i}",
                    wall_time=1_790_000_000.0 + i, dedup_key=f"{camera}|{i}")


def test_a_sink_owes_the_alerts_committed_after_it_was_opened(db, cipher):
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://cam/1", cipher)
        before = repo.add_alert(s, alert(0)).id
    with db.session() as s:
        assert repo.open_alert_sink(s, "mqtt") == before
        assert repo.open_alert_sink(s, "mqtt") == before  # opened once
        after = [repo.add_alert(s, alert(i)).id for i in (1, 2, 3)]
    with db.session() as s:
        assert [r.id for r in repo.alerts_for_sink(s, "mqtt")] == after
        assert repo.count_undelivered_to(s, "mqtt") == 3
        repo.mark_delivered_to(s, "mqtt", after[1])
        repo.mark_delivered_to(s, "mqtt", after[1])  # a repeat is a no-op
    with db.session() as s:  # a row left behind by a later one is still owed
        assert [r.id for r in repo.alerts_for_sink(s, "mqtt")] == [after[0], after[2]]
        assert repo.count_undelivered_to(s, "mqtt") == 2
        assert repo.count_undelivered_alerts(s) == 4  # the stream's own marks are separate
        assert repo.alerts_for_sink(s, "other", limit=1) == []  # a new sink owes nothing


def test_removing_a_camera_removes_its_alerts_delivery_rows(db, cipher):
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://cam/1", cipher)
        repo.add_camera(s, "yard", "rtsp://cam/2", cipher)
        repo.open_alert_sink(s, "mqtt")
        ids = [repo.add_alert(s, alert(0, "lobby")).id, repo.add_alert(s, alert(1, "yard")).id]
        for i in ids:
            repo.mark_delivered_to(s, "mqtt", i)
    with db.session() as s:
        repo.remove_camera(s, "lobby")
    with db.session() as s:
        assert [r.camera for r in repo.list_alerts(s)] == ["yard"]
        assert repo.count_undelivered_to(s, "mqtt") == 0
