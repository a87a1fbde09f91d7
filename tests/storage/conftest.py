"""Storage fixtures: the same tests run on a real SQLite file and a real PostgreSQL schema.

PostgreSQL runs in a fresh schema per test (search_path set through the connection
options) that is dropped afterwards, so parallel runs and the shared `test` database stay
clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import Database, open_database, sqlite_url
from storage.secrets import UrlCipher
from tests.services import require_postgres


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty PostgreSQL schema; dropped after."""
    base = require_postgres()
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


def sqlite_db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "data" / "xlwatch.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_db_url(tmp_path)
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def cipher() -> UrlCipher:
    return UrlCipher.from_passphrase("test-passphrase")
