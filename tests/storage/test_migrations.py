"""Migrations on real databases: an empty SQLite file and an empty PostgreSQL schema."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import DatabaseUnavailable, current_revision, migrate, open_database, sqlite_url
from storage.models import Base

TABLES = {"cameras", "chunks", "events", "queries", "alerts", "alert_rules",
          "alert_sinks", "alert_deliveries"}
HEAD = "0003"


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_open_database_upgrades_empty_db_to_models_and_downgrade_removes_all(db_url: str):
    db = open_database(db_url)
    try:
        assert _tables(db.engine) == TABLES
        assert current_revision(db.engine) == HEAD
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
        migrate(db.engine, "base", down=True)
        assert _tables(db.engine) == set()
        assert current_revision(db.engine) is None
        migrate(db.engine)
        assert _tables(db.engine) == TABLES
    finally:
        db.close()


def test_reopening_a_migrated_database_keeps_rows(db_url: str, cipher):
    from storage import repo

    db = open_database(db_url)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://cam/1", cipher)
    db.close()
    db2 = open_database(db_url)
    with db2.session() as s:
        assert [c.name for c in repo.list_cameras(s)] == ["lobby"]
    db2.close()


def test_sqlite_database_uses_wal_and_lives_where_asked(tmp_path: Path):
    path = tmp_path / "nested" / "x.db"
    db = open_database(sqlite_url(path))
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.close()
    assert path.is_file()


def test_concurrent_opens_of_one_database_migrate_once(db_url: str):
    url = db_url
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_database(url).close()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    db = open_database(url)
    assert current_revision(db.engine) == HEAD
    db.close()


def test_unreachable_postgres_raises_database_unavailable_with_masked_url():
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(DatabaseUnavailable) as info:
        open_database(url)
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


@pytest.mark.parametrize("url", ["mysql://x@h/db", "sqlite://", "sqlite:///:memory:"])
def test_unsupported_database_url_is_refused_naming_field(url: str):
    with pytest.raises(ValueError, match="db_url"):
        open_database(url)


def test_upgrading_from_0001_keeps_alerts_unacknowledged_and_downgrade_keeps_the_rows(
        db_url: str, cipher):
    from storage import repo
    from storage.records import NewAlert

    db = open_database(db_url)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://cam/1", cipher)
        first = repo.add_alert(s, NewAlert("lobby", "r", "person", "m", 1.0, "k1")).id
        repo.acknowledge_alert(s, first, when=5.0)
    migrate(db.engine, "0001", down=True)  # the alert rows stay, the column goes
    assert "acknowledged_at" not in {c["name"] for c in sa.inspect(db.engine)
                                     .get_columns("alerts")}
    migrate(db.engine)
    with db.session() as s:
        assert repo.get_alert(s, first).acknowledged_at is None  # back, unacknowledged
        assert repo.acknowledge_alert(s, first, when=7.0).acknowledged_at == 7.0
        assert repo.acknowledge_alert(s, first, when=9.0).acknowledged_at == 7.0  # kept
    db.close()
