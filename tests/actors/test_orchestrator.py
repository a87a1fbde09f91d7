"""The orchestrator and the real actors on a local Ray: ingest, events, alerts, questions.

Everything is real: Ray (loopback), SQLite under a temp data dir, a clip cut from
vtest.avi, the CV backend. One orchestrator is shared by the module's tests (in order).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.messages import Question
from pipeline.query.core import QueryError
from pipeline.wiring import cipher, database
from storage import repo
from tests.actors.conftest import make_cfg
from tests.conftest import VTEST
from tests.e2e.clips import cut_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(local_ray, tmp_path_factory):
    from pipeline.app.orchestrator import Orchestrator

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    root = tmp_path_factory.mktemp("orch")
    clip = cut_clip(VTEST, root / "clips" / "lobby.mp4", seconds=24)
    door = {"fps": 4, "backoff_initial_s": 0.5, "backoff_max_s": 1.0, "read_timeout_s": 3,
            "connect_timeout_s": 3}  # the RTSP camera: quick chunks, quick reconnects
    cfg = make_cfg(root / "data", cameras={"door": door})
    orch = Orchestrator(cfg).start()
    yield cfg, orch, root, clip
    orch.stop()


def add_camera(cfg, name, url):
    with database(cfg).session() as s:
        repo.add_camera(s, name, str(url), cipher(cfg))


def rows(cfg, camera):
    with database(cfg).session() as s:
        return (repo.list_chunks(s, camera), repo.list_events(s, camera),
                repo.list_alerts(s, after_id=0, camera=camera), repo.get_camera(s, camera))


def test_reconcile_ingests_a_db_camera_into_events_chunks_and_alerts(world):
    cfg, orch, root, clip = world
    add_camera(cfg, "lobby", clip)
    report = orch.reconcile()
    assert report.added == ["lobby"] and "lobby" in orch.ingest
    assert orch.wait_idle("lobby", 120)
    chunks, events, alerts, cam = rows(cfg, "lobby")
    assert [c.seq for c in chunks] == [0, 1]  # 24 frames at 1 fps: 16 + 8
    assert cam.status == "finished"
    people = [e for e in events if e.kind == "person_enter"]
    assert people, [e.kind for e in events]
    assert all((Path(cfg.data_dir) / e.thumbnail).is_file() for e in people if e.thumbnail)
    assert any(e.thumbnail for e in people)
    assert alerts and all(a.rule == "person-any" for a in alerts)
    assert any(a.thumbnail and (Path(cfg.data_dir) / a.thumbnail).is_file() for a in alerts)


def test_finished_file_camera_is_not_ingested_again(world):
    cfg, orch, _, _ = world
    before = rows(cfg, "lobby")
    report = orch.reconcile()
    assert report.added == [] and "lobby" not in orch.ingest  # read to its end
    after = rows(cfg, "lobby")
    assert len(after[1]) == len(before[1]) and len(after[0]) == len(before[0])


def test_ask_answers_with_intervals_thumbnails_and_persists_the_query(world):
    cfg, orch, _, _ = world
    answer = orch.ask(Question("lobby", "when did a person enter?"))
    assert answer.backend == "cv" and answer.intervals and answer.query_id
    for iv in answer.intervals:
        assert 0 <= iv.t_start <= iv.t_end <= 24
        assert iv.thumbnail and (Path(cfg.data_dir) / iv.thumbnail).is_file()
    with database(cfg).session() as s:
        stored = repo.list_queries(s, "lobby")[0]
    assert stored.id == answer.query_id and stored.answer == answer.text
    assert len(stored.intervals) == len(answer.intervals)


@pytest.mark.parametrize("question, field", [
    (Question("nosuchcam", "when did a person enter?"), "camera"),
    (Question("lobby", "   "), "question"),
    (Question("lobby", "x" * 1001), "question"),
    (Question("lobby", "when did a person enter?", since=2000.0, until=1000.0), "until"),
    (Question("lobby", "when did a person enter?", backend="gpt"), "backend"),
])
def test_bad_questions_are_refused_naming_the_field_and_nothing_is_stored(
        world, question, field):
    cfg, orch, _, _ = world
    with database(cfg).session() as s:
        before = len(repo.list_queries(s, limit=1000))
    with pytest.raises(QueryError, match=rf"^{field}: "):
        orch.ask(question)
    with database(cfg).session() as s:
        assert len(repo.list_queries(s, limit=1000)) == before


def test_unreadable_file_camera_fails_clearly_and_stores_nothing(world):
    cfg, orch, root, _ = world
    bad = root / "clips" / "broken.avi"
    bad.write_bytes(b"\x00garbage" * 100)
    add_camera(cfg, "broken", bad)
    orch.reconcile()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and rows(cfg, "broken")[3].status != "failed":
        time.sleep(0.2)
    chunks, events, alerts, cam = rows(cfg, "broken")
    assert cam.status == "failed" and "broken" in (cam.last_error or "")
    assert chunks == [] and events == [] and alerts == []


def test_camera_removed_from_the_db_loses_its_actor(world):
    cfg, orch, _, _ = world
    with database(cfg).session() as s:
        repo.remove_camera(s, "broken")
    report = orch.reconcile()
    assert report.removed == ["broken"]
    assert "broken" not in orch.ingest and "broken" not in orch.placement
    health = orch.health()
    assert "lobby" in health["placement"] and all(health["memory"].values())


def test_a_camera_beyond_capacity_waits_unplaced_while_the_others_run(world):
    """ray.cameras_per_device full: the new camera waits, says why in its row, and no
    other camera is moved or stopped; once there is room it runs."""
    cfg, orch, _, clip = world
    before = dict(orch.placement)
    full = cfg.ray.model_copy(update={"cameras_per_device": float(len(before))})
    orch.cfg = cfg.model_copy(update={"ray": full})
    try:
        add_camera(cfg, "overflow", clip)
        report = orch.reconcile()
        assert report.unplaced == ["overflow"] and "overflow" not in orch.ingest
        assert orch.placement == before and report.removed == [] and report.moved == []
        cam = rows(cfg, "overflow")[3]
        assert cam.status == "unplaced" and "cameras_per_device" in cam.last_error
        assert orch.reconcile().unplaced == ["overflow"]  # it keeps waiting
    finally:
        orch.cfg = cfg
    report = orch.reconcile()
    assert report.added == ["overflow"] and report.unplaced == []
    assert orch.wait_idle("overflow", 120)
    assert rows(cfg, "overflow")[3].status == "finished"
    with database(cfg).session() as s:
        repo.remove_camera(s, "overflow")
    orch.reconcile()


def test_demo_reports_answer_events_alerts_and_database_for_operator_footage(world):
    from pipeline.app.demo import DEMO_CAMERA, run_demo

    cfg, _, root, clip = world
    demo_cfg = make_cfg(root / "demo-data")
    report = run_demo(demo_cfg, str(clip))
    assert report.source == "--video" and report.footage == str(clip.resolve())
    assert report.answer["camera"] == DEMO_CAMERA and report.answer["intervals"]
    assert any(e["kind"] == "person_enter" for e in report.events)
    assert "demo-person" in {a["rule"] for a in report.alerts}
    assert str(root / "demo-data" / "xlwatch.db") in report.database
    text = "\n".join(report.lines())
    assert "UTC (t=" in text and "database: " in text
    port = demo_cfg.api.port
    assert report.dashboard == f"http://127.0.0.1:{port}/"  # told where the dashboard is
    assert f"dashboard: http://127.0.0.1:{port}/" in text


def test_memory_actor_dead_for_good_is_replaced_and_reloads_its_cameras(world):
    import ray

    cfg, orch, _, _ = world
    slot = orch.placement["lobby"]
    old = orch.memory[slot]
    ray.kill(old, no_restart=True)  # beyond Ray's restarts
    deadline = time.monotonic() + 60
    while orch.memory.get(slot) in (None, old):
        assert time.monotonic() < deadline
        orch.reconcile()  # first round forgets it, the next places lobby afresh
    stats = ray.get(orch.memory[orch.placement["lobby"]].stats.remote(), timeout=60)
    assert stats["cv"]["lobby"]["chunks"] == 2  # reloaded from the database


def test_videoxl2_question_on_a_cv_camera_is_refused_naming_the_backend(world):
    cfg, orch, _, _ = world
    with pytest.raises(ValueError, match=r"^backend: camera 'lobby' has no video LLM"):
        orch.ask(Question("lobby", "when did a person enter?", backend="videoxl2"))


def test_live_rtsp_camera_streams_then_reconnects_without_touching_others(world):
    from tests.rtsp import GstRtspServer, make_h264_clip, require_gst_rtsp

    require_gst_rtsp()
    cfg, orch, root, _ = world
    server = GstRtspServer(make_h264_clip(root / "clips" / "door.mp4", seconds=12.0)).start()
    try:
        add_camera(cfg, "door", server.url)
        assert orch.reconcile().added == ["door"]
        deadline = time.monotonic() + 90
        while not rows(cfg, "door")[0]:  # a first 16-frame chunk at 4 fps
            assert time.monotonic() < deadline, rows(cfg, "door")[3]
            time.sleep(0.5)
        server.kill()  # the camera loses power
        while rows(cfg, "door")[3].status != "reconnecting":
            assert time.monotonic() < deadline, rows(cfg, "door")[3]
            time.sleep(0.5)
        cam = rows(cfg, "door")[3]
        assert "door" in (cam.last_error or "") and "rtsp://127.0.0.1" in cam.last_error
        health = orch.health()
        assert all(health["memory"].values()) and health["cameras"]["door"] is True
        assert rows(cfg, "lobby")[3].status == "finished"  # the other camera is untouched
        # power back: the same server on the same port; the camera resumes by itself
        before = len(rows(cfg, "door")[0])
        server = GstRtspServer(server.clip, port=server.port).start()
        while not (rows(cfg, "door")[3].status == "live"
                   and len(rows(cfg, "door")[0]) > before):
            assert time.monotonic() < deadline + 60, rows(cfg, "door")[3]
            time.sleep(0.5)
        seqs = [c.seq for c in rows(cfg, "door")[0]]
        assert seqs == sorted(set(seqs))  # seqs continue after the reconnect, none twice
    finally:
        server.stop()
        with database(cfg).session() as s:
            repo.remove_camera(s, "door")
        assert orch.reconcile().removed == ["door"]
        assert not (Path(cfg.data_dir) / "thumbnails" / "door").exists()  # deleted camera


def test_sweep_keeps_events_forever_unless_a_retention_is_set(world):
    from pipeline.app.orchestrator import Orchestrator
    from storage.records import NewEvent

    cfg, orch, root, _ = world
    with database(cfg).session() as s:
        old_id = repo.add_events(s, "lobby", [NewEvent("motion", 0.0, wall_start=1000.0,
                                                       t_end=1.0, wall_end=1001.0)])[0]
    assert orch.sweep() == {"kv_forms_dropped": 0, "events_deleted": 0}
    kept = Orchestrator(make_cfg(root / "data", memory={"event_retention_days": 1}))
    kept.db = database(kept.cfg)
    assert kept.sweep()["events_deleted"] == 1  # only the 1970 event is past one day
    ids = {e.id for e in rows(cfg, "lobby")[1]}
    assert old_id not in ids and ids  # today's events stay


def test_disabled_camera_is_released_but_keeps_its_evidence_and_memory(world):
    import ray

    cfg, orch, _, _ = world
    thumbs = Path(cfg.data_dir) / "thumbnails" / "lobby"
    with database(cfg).session() as s:
        repo.update_camera(s, "lobby", enabled=False)
    assert orch.reconcile().removed == ["lobby"] and "lobby" not in orch.placement
    assert thumbs.is_dir() and any(thumbs.iterdir())
    with database(cfg).session() as s:
        repo.update_camera(s, "lobby", enabled=True)
    assert orch.reconcile().added == ["lobby"]
    stats = ray.get(orch.memory[orch.placement["lobby"]].stats.remote(), timeout=60)
    assert stats["cv"]["lobby"]["chunks"] == 2
    assert orch.ask(Question("lobby", "when did a person enter?")).intervals


def test_the_same_service_runs_on_postgresql(world):
    """Everything real: a database created for this test on the local PostgreSQL."""
    import uuid

    import psycopg

    from pipeline.app.orchestrator import Orchestrator
    from tests.services import require_postgres

    url = require_postgres()
    _, _, root, clip = world
    name = f"xlwatch_svc_{uuid.uuid4().hex[:8]}"
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    cfg = make_cfg(root / "pg-data", db_url=url.rsplit("/", 1)[0] + f"/{name}")
    try:
        add_camera(cfg, "lobby", clip)
        orch = Orchestrator(cfg).start()
        try:
            assert orch.wait_idle("lobby", 120)
            answer = orch.ask(Question("lobby", "when did a person enter?"))
        finally:
            orch.stop()
        chunks, events, alerts, cam = rows(cfg, "lobby")
        assert cam.status == "finished" and len(chunks) == 2
        assert answer.intervals and any(e.kind == "person_enter" for e in events) and alerts
        assert "postgresql" in database(cfg).dialect
    finally:
        database(cfg).close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
