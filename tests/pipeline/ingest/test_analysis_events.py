"""Open events close: at a stream gap (tracks end where they were last seen) and when a
camera's analysis starts again after a crash or kill. Real footage (vtest.avi), the real
CV analyzer, real SQLite."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.config import config_from_dict
from pipeline.ingest.analysis import GAP_S, CameraAnalysis
from pipeline.ingest.supervisor import iter_chunks
from pipeline.wiring import cipher, database, ingest_options
from storage import repo

pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path, vtest_path):
    cfg = config_from_dict({"data_dir": str(tmp_path / "data")})
    db = database(cfg)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/live", cipher(cfg))
    chunks = []
    for chunk in iter_chunks(str(vtest_path), ingest_options(cfg.camera("lobby")), "lobby"):
        chunks.append(chunk)
        if len(chunks) == 3:
            break
    return cfg, db, chunks


def open_events(db):
    with db.session() as s:
        return [e for e in repo.list_events(s, "lobby", limit=10_000) if e.t_end is None]


def test_a_gap_in_the_stream_ends_every_open_event_before_it(world):
    cfg, db, chunks = world
    analysis = CameraAnalysis(db, cfg, "lobby")
    for chunk in chunks[:2]:
        analysis.process(chunk)
    assert open_events(db), "the footage should leave someone on screen"
    last_end = chunks[1].end
    shift = chunks[1].end - chunks[2].start + GAP_S + 50  # 50 s with no frames
    late = dataclasses.replace(chunks[2], seq=2, times=tuple(t + shift for t in chunks[2].times))
    analysis.process(late)
    with db.session() as s:
        events = repo.list_events(s, "lobby", limit=10_000)
    before = [e for e in events if e.t_start <= last_end]
    assert before and all(e.t_end is not None and e.t_end <= last_end for e in before)


def test_events_left_open_by_a_crash_are_closed_when_the_camera_starts_again(world):
    cfg, db, chunks = world
    crashed = CameraAnalysis(db, cfg, "lobby")
    for chunk in chunks[:2]:
        crashed.process(chunk)  # then the process dies: no flush
    left_open = open_events(db)
    assert left_open
    CameraAnalysis(db, cfg, "lobby")  # the restarted actor's analysis
    assert open_events(db) == []
    with db.session() as s:
        closed = [e for e in repo.list_events(s, "lobby", limit=10_000)
                  if e.id in {o.id for o in left_open}]
    assert all(e.details.get("closed") == "restart" for e in closed)
    assert all(e.wall_end <= chunks[1].wall_origin + chunks[1].end + 1e-6 for e in closed)


def test_stored_person_rows_keep_who_the_person_was_settled_at_the_end(world, vtest_path):
    """A person_enter row is inserted at confirmation and updated at its end; who the
    person was is decided again at the end (model/cv/reid.py), and the row says that.
    The whole clip: some of its tracks are someone else at the end than at confirmation."""
    cfg, db, _ = world
    analysis = CameraAnalysis(db, cfg, "lobby")
    emitted = []
    for chunk in iter_chunks(str(vtest_path), ingest_options(cfg.camera("lobby")), "lobby"):
        emitted += analysis.process(chunk)
    emitted += analysis.flush()
    last = {e.id: e for e in emitted if e.kind == "person_enter"}  # end emissions last
    with db.session() as s:
        rows = [e for e in repo.list_events(s, "lobby", limit=10_000)
                if e.kind == "person_enter"]
    assert rows and all(r.t_end is not None for r in rows)
    first = {e.id: e for e in reversed(emitted) if e.kind == "person_enter"}
    assert any(first[i].details["person_id"] != last[i].details["person_id"] for i in last)
    for r in rows:
        assert r.details["person_id"] == last[r.id].details["person_id"]
        assert r.details["reentry"] == last[r.id].details["reentry"]
