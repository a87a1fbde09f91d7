"""Events, alerts, ask, health, metrics and thumbnails over HTTP (real SQLite)."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from pipeline.alerts.relay import AlertRelay
from pipeline.app.api.app import safe_thumbnail_path
from pipeline.messages import Answer, AnswerInterval, CameraState, CameraStatus
from storage import repo
from storage.records import NewEvent

WALL = 1_790_000_000.0


def add_events(service, n=3):
    with service.db.session() as s:
        return repo.add_events(s, "lobby", [
            NewEvent(kind="person_enter", t_start=10.0 * i, wall_start=WALL + 10 * i,
                     t_end=10.0 * i + 2, wall_end=WALL + 10 * i + 2,
                     track_id=i, confidence=0.8, bbox=(1, 2, 3, 4),
                     thumbnail=f"thumbnails/lobby/{i}.jpg") for i in range(n)])


def add_alert(service, i):
    from tests.pipeline.alerts.test_relay import make_alert

    return AlertRelay(service.db).record(make_alert(i))


def test_events_in_a_window_newest_first_with_readable_times(client, service, lobby):
    ids = add_events(service)
    r = client.get("/events", params={"camera": "lobby", "since": WALL + 5, "until": WALL + 25})
    assert r.status_code == 200
    body = r.json()
    assert [e["event_id"] for e in body] == ids[:0:-1]  # newest first
    assert body[-1]["start"].startswith("2026-") and body[-1]["thumbnail_url"] == (
        "/thumbnails/lobby/1.jpg")


def test_events_bad_window_and_unknown_camera(client, lobby):
    r = client.get("/events", params={"camera": "lobby", "since": 20, "until": 10})
    assert r.status_code == 400 and "until" in r.text
    assert client.get("/events", params={"camera": "nope"}).status_code == 404


def test_alerts_cursor_returns_only_newer_alerts(client, service, lobby):
    ids = [add_alert(service, i) for i in range(3)]
    assert [a["alert_id"] for a in client.get("/alerts", params={"after_id": 0}).json()] == ids
    newer = client.get("/alerts", params={"after_id": ids[0]}).json()
    assert [a["alert_id"] for a in newer] == ids[1:]
    newest = client.get("/alerts", params={"limit": 1}).json()
    assert [a["alert_id"] for a in newest] == ids[-1:]
    assert newest[0]["camera"] == "lobby" and newest[0]["time"].startswith("2026-")


def test_ask_without_query_backend_is_503_then_answers_once_attached(client, service, lobby):
    q = {"camera": "lobby", "question": "when did a person enter?"}
    r = client.post("/ask", json=q)
    assert r.status_code == 503 and "query backend" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "service_unavailable"

    def answer(question):  # the query backend stands in for the service's cv/videoxl2 path
        iv = AnswerInterval(WALL, WALL + 2, 0.0, 2.0, "person", 0.9)
        return Answer(question.camera, question.text, "a person entered at 0s", "cv", (iv,))

    service.attach_query(answer)
    body = client.post("/ask", json=q).json()
    assert body["text"] == "a person entered at 0s" and body["intervals"][0]["t_end"] == 2.0
    assert client.post("/ask", json={**q, "camera": "nope"}).status_code == 404


@pytest.mark.parametrize("patch,field", [({"question": "  "}, "question"),
                                         ({"question": "x" * 1001}, "question"),
                                         ({"since": 20, "until": 10}, "until")])
def test_ask_refuses_bad_questions(client, lobby, patch, field):
    r = client.post("/ask", json={"camera": "lobby", "question": "who?", **patch})
    assert r.status_code in (400, 422) and field in r.text


def test_health_reports_database(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["ok"] and r.json()["database"]["ok"]


def test_a_profile_needs_the_memory_actors_and_refuses_bad_steps(client):
    r = client.post("/debug/profile", json={"steps": 5})
    assert r.status_code == 503 and "xlwatch serve" in r.text  # the API alone runs none
    r = client.post("/debug/profile", json={"steps": 0})
    assert r.status_code == 422 and "steps" in r.text


def test_metrics_exposes_prometheus_text_with_camera_and_question_series(client, metrics, lobby, cfg,
                                                                          service):
    metrics.set_camera_source(lambda: [CameraStatus("lobby", CameraState.LIVE,
                                                    frames_decoded=250, frames_dropped=3)])
    service.attach_query(lambda q: Answer(q.camera, q.text, "no", "cv"))
    client.post("/ask", json={"camera": "lobby", "question": "anyone?"})
    first, _ = add_alert(service, 1), add_alert(service, 2)
    with service.db.session() as s:
        repo.mark_alert_delivered(s, first)
        for seq in range(3):
            repo.upsert_chunk(s, "lobby", seq, t_start=16.0 * seq, t_end=16.0 * seq + 15,
                              wall_start=WALL, wall_end=WALL + 15, n_frames=16)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'xlwatch_frames_decoded_total{camera="lobby"} 250.0' in text
    assert 'xlwatch_frames_dropped_total{camera="lobby"} 3.0' in text
    assert 'xlwatch_ingest_state{camera="lobby",state="live"} 1.0' in text
    assert 'xlwatch_questions_total{backend="cv",outcome="ok"} 1.0' in text
    assert "xlwatch_question_latency_seconds_bucket" in text
    assert 'xlwatch_alerts_raised_total{camera="lobby",rule="r"} 2.0' in text
    assert 'xlwatch_alerts_delivered_total{camera="lobby",rule="r"} 1.0' in text
    assert "xlwatch_relay_backlog" not in text  # no Redis, no webhook: nothing to deliver
    assert 'xlwatch_chunks_prefilled_total{camera="lobby"} 3.0' in text
    from pipeline.app.api.app import create_app
    from pipeline.config import config_from_dict

    relayed = config_from_dict({"data_dir": str(cfg.data_dir),
                                "redis_url": "redis://127.0.0.1:6379/0"})
    with TestClient(create_app(service, relayed)) as c:
        assert "xlwatch_relay_backlog 1.0" in c.get("/metrics").text


def test_thumbnail_is_served_and_traversal_is_refused(client, cfg):
    folder = cfg.data_dir / "thumbnails" / "lobby"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    (cfg.data_dir / "secret.jpg").write_bytes(b"private")
    r = client.get("/thumbnails/lobby/a.jpg")
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"
    for bad in ("/thumbnails/..%2Fsecret.jpg", "/thumbnails/lobby/..%2F..%2Fsecret.jpg",
                "/thumbnails/%2E%2E/secret.jpg"):
        r = client.get(bad)
        assert r.status_code == 400 and b"private" not in r.content
        assert "thumbnails folder" in r.json()["error"]["message"]
    assert client.get("/thumbnails/lobby/missing.jpg").status_code == 404


def test_safe_thumbnail_path_refuses_escapes(tmp_path):
    (tmp_path / "thumbnails").mkdir()
    os.symlink("/etc", tmp_path / "thumbnails" / "link")
    for rel in ("../secret.jpg", "lobby/../../secret.jpg", "/etc/x.jpg", "link/x.jpg",
                "lobby/a.txt", ""):
        with pytest.raises(ValueError, match="thumbnail"):
            safe_thumbnail_path(tmp_path, rel)
    assert safe_thumbnail_path(tmp_path, "lobby/a.jpg") == (
        tmp_path / "thumbnails" / "lobby" / "a.jpg").resolve()


def test_metrics_pull_camera_statuses_from_the_service_when_it_offers_them(service, cfg):
    from fastapi.testclient import TestClient

    from pipeline.app.api.app import create_app

    class Live(type(service)):
        def camera_statuses(self):
            return [CameraStatus("yard", CameraState.RECONNECTING, reconnects=2)]

    live = Live(service.db, cfg)
    with TestClient(create_app(live, cfg)) as c:
        text = c.get("/metrics").text
    assert 'xlwatch_camera_reconnects_total{camera="yard"} 2.0' in text
    assert 'xlwatch_ingest_state{camera="yard",state="reconnecting"} 1.0' in text


def test_database_outage_is_503_naming_the_database_not_500(cfg):
    from fastapi.testclient import TestClient

    from pipeline.app.api.app import create_app
    from pipeline.app.api.service_api import DatabaseServiceAPI
    from storage.db import open_database
    from tests.services import free_port

    # A PostgreSQL URL where nothing listens: every session fails to connect.
    url = f"postgresql+psycopg://postgres:pw@127.0.0.1:{free_port()}/test?connect_timeout=1"
    down = DatabaseServiceAPI(open_database(url, migrate_schema=False), cfg)
    with TestClient(create_app(down, cfg)) as c:
        r = c.get("/cameras")
        assert r.status_code == 503 and "database" in r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "database_unavailable"
        assert "pw" not in r.text
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["ok"] is False


def test_readiness_and_health_are_false_while_a_configured_redis_is_down(service, tmp_path):
    from pipeline.app.api.app import create_app
    from pipeline.config import config_from_dict
    from tests.services import free_port

    cfg = config_from_dict({"data_dir": str(tmp_path / "d"),
                            "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    service.cfg = cfg
    with TestClient(create_app(service, cfg)) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"ok": False, "parts": {"database": True, "redis": False}}
        assert c.get("/livez").status_code == 200
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["redis"] == {"ok": False}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_a_time_that_is_not_a_finite_number_is_refused_naming_the_field(client, lobby, value):
    r = client.post("/ask", json={"camera": "lobby", "question": "anyone?", "since": value})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"][:2] == [
        "body", "since"]
    r = client.get("/events", params={"camera": "lobby", "until": value})
    assert r.status_code == 422 and "until" in r.text
