"""Several threads and processes on one database; outages surface as DatabaseUnavailable."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from storage import repo
from storage.db import Database, DatabaseUnavailable, open_database, sqlite_url
from storage.records import NewAlert, NewEvent
from storage.secrets import UrlCipher

WRITES = 25


def _writer(url: str, worker: int) -> None:
    """Each unit of work reads (camera id) and then writes while other processes do the
    same; writers must queue on the lock, never fail or lose a row."""
    db = open_database(url)
    for i in range(WRITES):
        with db.session() as s:
            repo.add_events(s, "cam", [NewEvent(kind="motion", t_start=i, wall_start=i,
                                                details={"worker": worker})])
            repo.add_alert(s, NewAlert(camera="cam", rule="r", kind="motion", message="m",
                                       wall_time=i, dedup_key=f"shared-{i}"))
    db.close()


def test_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path):
    url = sqlite_url(tmp_path / "x.db")
    db = open_database(url)
    with db.session() as s:
        repo.add_camera(s, "cam", "rtsp://h/x", UrlCipher.from_passphrase("k"))
    procs = [mp.get_context("fork").Process(target=_writer, args=(url, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with db.session() as s:
        events = repo.list_events(s, "cam", limit=10_000)
        alerts = repo.list_alerts(s, limit=10_000)
    assert len(events) == 3 * WRITES
    assert {e.details["worker"] for e in events} == {0, 1, 2}
    assert len(alerts) == WRITES  # racing duplicates of each dedup_key collapsed to one row
    db.close()


def test_threads_share_one_database_handle(db, cipher):
    with db.session() as s:
        repo.add_camera(s, "cam", "rtsp://h/x", cipher)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                with db.session() as s:
                    repo.add_events(s, "cam", [NewEvent(kind="motion", t_start=i,
                                                        wall_start=n * 100 + i)])
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with db.session() as s:
        assert len(repo.list_events(s, "cam", limit=1000)) == 40


def test_postgres_connections_killed_server_side_are_replaced(pg_schema_url: str):
    app = f"xlw_test_{uuid.uuid4().hex[:8]}"
    db = open_database(f"{pg_schema_url}&application_name={app}")
    cipher = UrlCipher.from_passphrase("k")
    with db.session() as s:
        repo.add_camera(s, "cam", "rtsp://h/x", cipher)
    admin = sa.create_engine(pg_schema_url)
    with admin.begin() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :a"), {"a": app}).scalar()
    admin.dispose()
    assert killed >= 1
    with db.session() as s:  # pool_pre_ping notices the dead connection and reconnects
        assert [c.name for c in repo.list_cameras(s)] == ["cam"]
    db.close()


def test_locked_sqlite_surfaces_as_database_unavailable(tmp_path: Path, cipher):
    url = sqlite_url(tmp_path / "x.db")
    db = open_database(url)
    holder = sa.create_engine(url, connect_args={"isolation_level": None})
    with holder.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        fast = sa.create_engine(url, connect_args={"timeout": 0.1})
        impatient = Database(fast, sessionmaker(fast))
        with pytest.raises(DatabaseUnavailable, match="locked"), impatient.session() as s:
            repo.add_camera(s, "cam", "rtsp://h/x", cipher)
        conn.exec_driver_sql("ROLLBACK")
    fast.dispose()
    holder.dispose()
    db.close()


def test_transact_retries_until_a_lock_is_released(tmp_path: Path, cipher):
    url = sqlite_url(tmp_path / "x.db")
    open_database(url).close()
    fast = sa.create_engine(url, connect_args={"timeout": 0.05})
    impatient = Database(fast, sessionmaker(fast))
    holder = sa.create_engine(url, connect_args={"isolation_level": None})
    conn = holder.connect()
    conn.exec_driver_sql("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: conn.exec_driver_sql("ROLLBACK"))
    release.start()
    calls: list[int] = []

    def work(s):
        calls.append(1)
        return repo.add_camera(s, "cam", "rtsp://h/x", cipher).name

    assert impatient.transact(work, attempts=6, delay_s=0.1) == "cam"
    assert len(calls) >= 2  # the first attempt hit the lock
    release.join()
    conn.close()
    with impatient.session() as s:
        assert [c.name for c in repo.list_cameras(s)] == ["cam"]
    with pytest.raises(DatabaseUnavailable):
        conn = holder.connect()
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            impatient.transact(lambda s: repo.add_camera(s, "cam2", "rtsp://h/y", cipher),
                               attempts=2, delay_s=0.01)
        finally:
            conn.exec_driver_sql("ROLLBACK")
            conn.close()
    fast.dispose()
    holder.dispose()
