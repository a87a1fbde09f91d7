"""Storage fixtures (imported by tests/storage/conftest.py and CLI tests): the same tests run on a real SQLite file and a real PostgreSQL schema.

PostgreSQL runs in schemas of its own (search_path set through the connection options)
that are dropped afterwards, so parallel runs and the shared `test` database stay clean.
Migration tests get a fresh, empty schema each (`pg_schema_url`); repository tests share
one migrated schema per session that is truncated before each test (`clean_pg_url`), and
SQLite tests copy a migrated template file, because migrating per test costs ~0.5 s.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import Database, open_database, sqlite_url
from storage.models import Base
from storage.secrets import UrlCipher
from tests.services import require_postgres


@contextlib.contextmanager
def _new_schema(base: str) -> Iterator[str]:
    schema = f"xlw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty PostgreSQL schema; dropped after."""
    with _new_schema(require_postgres()) as url:
        yield url


@pytest.fixture(scope="session")
def _pg_shared() -> Iterator[tuple[str, Database]]:
    with _new_schema(require_postgres()) as url:
        database = open_database(url)
        yield url, database
        database.close()


@pytest.fixture
def clean_pg_url(_pg_shared: tuple[str, Database]) -> str:
    """The session's migrated PostgreSQL schema, emptied (ids restart at 1)."""
    url, database = _pg_shared
    tables = ", ".join(Base.metadata.tables)
    with database.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "xlwatch.db"
    open_database(sqlite_url(path)).close()
    # Closing the last connection checkpoints the WAL into the main file and removes it.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def migrated_sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own, at tmp_path/data/xlwatch.db."""
    path = tmp_path / "data" / "xlwatch.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, path)
    return sqlite_url(path)


def sqlite_db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "data" / "xlwatch.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_db_url(tmp_path)
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty database: one test's SQLite file or the shared PostgreSQL schema."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "clean_pg_url"
    database = open_database(request.getfixturevalue(fixture))
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def cipher() -> UrlCipher:
    return UrlCipher.from_passphrase("test-passphrase")
