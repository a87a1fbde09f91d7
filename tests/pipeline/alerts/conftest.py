"""A real database (migrated) with cameras `lobby` and `yard`: SQLite (`db`) or, for
the tests that must hold on both, SQLite and PostgreSQL in a fresh schema (`any_db`)."""

from __future__ import annotations

import pytest

from storage import repo
from storage.db import open_database, sqlite_url
from storage.secrets import load_cipher
from tests.storage.conftest import pg_schema_url  # noqa: F401 (fixture)


def _with_cameras(url, tmp_path):
    database = open_database(url)
    cipher = load_cipher(tmp_path)
    with database.session() as s:
        for name in ("lobby", "yard"):
            repo.add_camera(s, name, f"rtsp://127.0.0.1:8554/{name}", cipher)
    return database


@pytest.fixture
def db(tmp_path):
    database = _with_cameras(sqlite_url(tmp_path / "xlwatch.db"), tmp_path)
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    url = (sqlite_url(tmp_path / "xlwatch.db") if request.param == "sqlite"
           else request.getfixturevalue("pg_schema_url"))
    database = _with_cameras(url, tmp_path)
    yield database
    database.close()
