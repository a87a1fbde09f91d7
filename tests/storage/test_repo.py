"""Repository functions, run identically against SQLite and PostgreSQL (`db` fixture)."""

from __future__ import annotations

import pytest

from storage import repo
from storage.records import Conflict, NewAlert, NewEvent, NotFound


def _camera(db, cipher, name="lobby", url="rtsp://alice:s3cret@10.0.0.5/stream"):
    with db.session() as s:
        return repo.add_camera(s, name, url, cipher, fps=2.0, options={"transport": "udp"})


def test_add_camera_stores_masked_url_and_decrypts_round_trip(db, cipher):
    cam = _camera(db, cipher)
    assert cam.url_masked == "rtsp://alice:***@10.0.0.5/stream"
    assert (cam.fps, cam.options, cam.status, cam.enabled) == (2.0, {"transport": "udp"},
                                                               "new", True)
    with db.session() as s:
        assert repo.camera_url(s, "lobby", cipher) == "rtsp://alice:s3cret@10.0.0.5/stream"
        assert repo.get_camera(s, "lobby") == cam
        assert repo.get_camera(s, "nope") is None


def test_duplicate_camera_name_raises_conflict_and_keeps_first(db, cipher):
    _camera(db, cipher)
    with pytest.raises(Conflict, match="name.*lobby"), db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://other/x", cipher)
    with db.session() as s:
        cams = repo.list_cameras(s)
        assert [c.url_masked for c in cams] == ["rtsp://alice:***@10.0.0.5/stream"]


def test_failed_unit_of_work_rolls_back_every_write(db, cipher):
    with pytest.raises(Conflict), db.session() as s:
        repo.add_camera(s, "a", "rtsp://h/a", cipher)
        repo.add_camera(s, "a", "rtsp://h/b", cipher)
    with db.session() as s:
        assert repo.list_cameras(s) == []


def test_remove_camera_cascades_to_its_rows_only(db, cipher):
    _camera(db, cipher, "a")
    _camera(db, cipher, "b")
    with db.session() as s:
        for name in ("a", "b"):
            repo.upsert_chunk(s, name, 0, t_start=0, t_end=16, wall_start=100, wall_end=116,
                              n_frames=16)
            repo.add_events(s, name, [NewEvent(kind="motion", t_start=1, wall_start=101)])
            repo.add_query(s, name, "who?", "cv", answer="nobody")
            repo.add_alert(s, NewAlert(camera=name, rule="r", kind="motion", message="m",
                                       wall_time=101, dedup_key=f"{name}-1"))
            repo.add_alert_rule(s, f"rule-{name}", "motion", camera=name)
        repo.remove_camera(s, "a")
    with db.session() as s:
        assert [c.name for c in repo.list_cameras(s)] == ["b"]
        assert {e.camera for e in repo.list_events(s)} == {"b"}
        assert {a.camera for a in repo.list_alerts(s)} == {"b"}
        assert [r.name for r in repo.list_alert_rules(s)] == ["rule-b"]
        assert [q.camera for q in repo.list_queries(s)] == ["b"]
        assert len(repo.list_chunks(s, "b")) == 1
        with pytest.raises(NotFound, match="camera.*'a'"):
            repo.list_chunks(s, "a")


def test_set_camera_status_masks_credentials_in_last_error(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        repo.set_camera_status(s, "lobby", "reconnecting",
                               "cannot open rtsp://alice:s3cret@10.0.0.5/stream")
    with db.session() as s:
        cam = repo.get_camera(s, "lobby")
    assert cam.status == "reconnecting"
    assert "s3cret" not in cam.last_error and "alice:***@" in cam.last_error


def test_upsert_chunk_updates_in_place_and_important_is_sticky(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        repo.upsert_chunk(s, "lobby", 3, t_start=48, t_end=64, wall_start=1048,
                          wall_end=1064, n_frames=16, important=True, fine_tier="gpu")
        c = repo.upsert_chunk(s, "lobby", 3, important=False, fine_tier="disk",
                              coarse_tier="host")
    assert (c.important, c.fine_tier, c.coarse_tier, c.t_end) == (True, "disk", "host", 64)
    with db.session() as s:
        repo.upsert_chunk(s, "lobby", 1, t_start=16, t_end=32, wall_start=1016,
                          wall_end=1032, n_frames=16)
        assert repo.mark_chunk_important(s, "lobby", 1) is True
        assert repo.mark_chunk_important(s, "lobby", 99) is False
        chunks = repo.list_chunks(s, "lobby")
        assert [(c.seq, c.important) for c in chunks] == [(1, True), (3, True)]
        assert [c.seq for c in repo.list_chunks(s, "lobby", since_seq=2)] == [3]


def test_list_events_filters_by_overlap_kind_and_limit(db, cipher):
    _camera(db, cipher)
    evs = [
        NewEvent(kind="person_enter", t_start=0, wall_start=1000, t_end=5, wall_end=1005,
                 track_id=1, confidence=0.9, bbox=(1, 2, 3, 4), count=1,
                 details={"zone": "door"}),
        NewEvent(kind="motion", t_start=10, wall_start=1010, t_end=30, wall_end=1030),
        NewEvent(kind="person_enter", t_start=40, wall_start=1040),  # still open
    ]
    with db.session() as s:
        ids = repo.add_events(s, "lobby", evs)
    assert len(ids) == 3 and ids == sorted(ids)
    with db.session() as s:
        assert [e.id for e in repo.list_events(s, "lobby", since=1020, until=1035)] == [ids[1]]
        assert [e.id for e in repo.list_events(s, "lobby", since=1050)] == [ids[2]]
        got = repo.list_events(s, "lobby", kinds=["person_enter"])
        assert [e.id for e in got] == [ids[0], ids[2]]
        assert got[0].bbox == [1.0, 2.0, 3.0, 4.0] and got[0].details == {"zone": "door"}
        assert len(repo.list_events(s, limit=2)) == 2
        repo.update_event_end(s, ids[2], 45.0, 1045.0, {"frames": 5})
    with db.session() as s:
        closed = repo.list_events(s, "lobby", since=1040)[0]
        assert (closed.t_end, closed.wall_end, closed.details) == (45.0, 1045.0, {"frames": 5})
        assert repo.delete_events_before(s, 1020) == 1


def test_add_query_keeps_answer_intervals_and_chunks(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        repo.add_query(s, "lobby", "first?", "cv", answer="a")
        q = repo.add_query(s, "lobby", "when did a person enter?", "videoxl2",
                           since=1000.0, until=2000.0, answer="from 12.0 to 20.5 seconds",
                           intervals=[(1012.0, 1020.5)], evidence=[{"event_id": 4}],
                           chunks_used=[(0, "dense"), (1, "coarse")], latency_ms=420.0)
    with db.session() as s:
        latest = repo.list_queries(s, "lobby")
    assert [x.question for x in latest] == ["when did a person enter?", "first?"]
    assert latest[0] == q
    assert q.intervals == [[1012.0, 1020.5]] and q.chunks_used == [[0, "dense"], [1, "coarse"]]


def _alert(key: str, camera="lobby", t=1000.0) -> NewAlert:
    return NewAlert(camera=camera, rule="fight", kind="anomaly", message="fight?",
                    wall_time=t, dedup_key=key, score=0.93, details={"seq": 4})


def test_add_alert_with_duplicate_dedup_key_returns_existing_row(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        first = repo.add_alert(s, _alert("k1"))
    with db.session() as s:
        again = repo.add_alert(s, _alert("k1", t=2000.0))
    assert again == first
    with db.session() as s:
        assert len(repo.list_alerts(s)) == 1


def test_alert_delivery_outbox_cursor_and_failures(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        a1, a2, a3 = (repo.add_alert(s, _alert(f"k{i}", t=1000.0 + i)) for i in range(3))
    with db.session() as s:
        repo.record_delivery_failure(s, a1.id, "redis://u:pw@127.0.0.1 down")
        repo.mark_alert_delivered(s, a2.id, when=5.0)
    with db.session() as s:
        pending = repo.undelivered_alerts(s)
        assert [a.id for a in pending] == [a1.id, a3.id]
        assert pending[0].delivery_attempts == 1 and "pw" not in pending[0].last_error
        assert [a.id for a in repo.list_alerts(s, after_id=a1.id)] == [a2.id, a3.id]
        assert [a.id for a in repo.list_alerts(s, limit=1)] == [a1.id]
        with pytest.raises(NotFound, match="alert_id"):
            repo.mark_alert_delivered(s, 10_000)


def test_alert_rules_global_and_per_camera(db, cipher):
    _camera(db, cipher, "a")
    _camera(db, cipher, "b")
    with db.session() as s:
        repo.add_alert_rule(s, "everywhere", "person_enter", {"zone": "door"})
        repo.add_alert_rule(s, "only-a", "loitering", {"seconds": 30}, camera="a")
        repo.add_alert_rule(s, "off-b", "motion", camera="b", enabled=False)
    with db.session() as s:
        assert [r.name for r in repo.list_alert_rules(s, "a")] == ["everywhere", "only-a"]
        assert [r.name for r in repo.list_alert_rules(s, "b", enabled_only=True)] == [
            "everywhere"]
        assert repo.list_alert_rules(s, "a")[1].params == {"seconds": 30}
        with pytest.raises(Conflict, match="name.*everywhere"):
            repo.add_alert_rule(s, "everywhere", "motion")


def test_delete_chunks_forgets_only_named_seqs(db, cipher):
    _camera(db, cipher)
    with db.session() as s:
        for seq in range(4):
            repo.upsert_chunk(s, "lobby", seq, t_start=seq * 16, t_end=seq * 16 + 16,
                              wall_start=seq, wall_end=seq + 1, n_frames=16)
        assert repo.delete_chunks(s, "lobby", [0, 2, 7]) == 2
        assert repo.delete_chunks(s, "lobby", []) == 0
        assert [c.seq for c in repo.list_chunks(s, "lobby")] == [1, 3]


def test_new_chunk_without_times_is_refused_naming_field(db, cipher):
    _camera(db, cipher)
    with pytest.raises(ValueError, match="t_start"), db.session() as s:
        repo.upsert_chunk(s, "lobby", 0, fine_tier="gpu")


def test_upsert_alert_rule_replaces_in_place(db, cipher):
    _camera(db, cipher, "a")
    with db.session() as s:
        first = repo.upsert_alert_rule(s, "r", "motion", {"min": 1})
        again = repo.upsert_alert_rule(s, "r", "loitering", {"seconds": 9}, camera="a",
                                       enabled=False)
    assert again.id == first.id
    with db.session() as s:
        (rule,) = repo.list_alert_rules(s)
    assert (rule.kind, rule.params, rule.camera, rule.enabled) == (
        "loitering", {"seconds": 9}, "a", False)
