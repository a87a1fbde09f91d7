"""A database outage loses nothing: a camera's chunk rows and events, and the alerts they
raise, wait in durable spools in the data dir and are written in order once PostgreSQL
takes connections again. The outage is real: the test's own PostgreSQL database refuses
connections (ALLOW_CONNECTIONS false) and its sessions are terminated, as in an operator's
maintenance window; real footage, the real CV analyzer and the real alert core."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from pipeline.alerts.core import AlertCore
from pipeline.config import config_from_dict
from pipeline.ingest.analysis import CameraAnalysis
from pipeline.ingest.supervisor import iter_chunks
from pipeline.wiring import cipher, ingest_options
from storage import repo
from storage.db import open_database
from tests.services import require_postgres

pytestmark = pytest.mark.slow


class Outage:
    """A database of the test's own on the real server, which can refuse connections."""

    def __init__(self, base_url: str):
        self.name = f"xlwatch_outage_{uuid.uuid4().hex[:8]}"
        admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = base_url.rsplit("/", 1)[0] + "/" + self.name

    def down(self) -> None:
        with self.admin.connect() as c:
            c.execute(sa.text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"),
                      {"d": self.name})

    def up(self) -> None:
        with self.admin.connect() as c:
            c.execute(sa.text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def drop(self) -> None:
        self.up()
        with self.admin.connect() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"),
                      {"d": self.name})
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


@pytest.fixture
def outage():
    o = Outage(require_postgres())
    yield o
    o.drop()


def test_chunks_events_and_alerts_of_an_outage_are_written_in_order_afterwards(
        outage, tmp_path, vtest_path):
    cfg = config_from_dict({
        "data_dir": str(tmp_path / "data"), "db_url": outage.url,
        "alerts": {"cooldown_s": 0, "rules": [{"name": "person-any", "kind": "person"}]}})
    db = open_database(cfg.database_url)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/live", cipher(cfg))
    analysis, alerts = CameraAnalysis(db, cfg, "lobby"), AlertCore(cfg, db)
    chunks = []
    for chunk in iter_chunks(str(vtest_path), ingest_options(cfg.camera("lobby")), "lobby"):
        chunks.append(chunk)
        if len(chunks) == 4:
            break

    def ingest(chunk):  # what the ingest and alert actors do with one chunk
        events = analysis.process(chunk)
        alerts.on_events("lobby", events)
        return events

    ingest(chunks[0])
    outage.down()
    during = [ingest(c) for c in chunks[1:3]]
    assert len(analysis.spool) == 2 and analysis.chunks_lost == 0
    assert any(during), "the footage should raise events during the outage"
    assert all(e.id is None for evs in during for e in evs)  # not in the database yet
    assert len(alerts.spool) >= 1
    outage.up()
    ingest(chunks[3])
    alerts.drain_spool()
    assert len(analysis.spool) == 0 and len(alerts.spool) == 0
    with db.session() as s:
        stored = repo.list_chunks(s, "lobby")
        events = repo.list_events(s, "lobby", limit=10_000)
        raised = repo.list_alerts(s, after_id=0, camera="lobby", limit=1000)
    assert [c.seq for c in stored] == [0, 1, 2, 3]
    assert {e.chunk_seq for e in events} >= {1, 2}  # the outage's events are there
    assert len({e.details["key"] for e in events}) == len(events)  # each event once
    assert any(a.t >= chunks[1].start for a in raised)  # so are the outage's alerts
    db.close()
