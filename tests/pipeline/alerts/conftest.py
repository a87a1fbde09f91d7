"""A real SQLite database (migrated) with cameras `lobby` and `yard`."""

from __future__ import annotations

import pytest

from storage import repo
from storage.db import open_database, sqlite_url
from storage.secrets import load_cipher


@pytest.fixture
def db(tmp_path):
    database = open_database(sqlite_url(tmp_path / "xlwatch.db"))
    cipher = load_cipher(tmp_path)
    with database.session() as s:
        for name in ("lobby", "yard"):
            repo.add_camera(s, name, f"rtsp://127.0.0.1:8554/{name}", cipher)
    yield database
    database.close()
