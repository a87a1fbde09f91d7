"""Storage fixtures for tests/storage (defined in tests/storage/fixtures.py)."""

from tests.storage.fixtures import (  # noqa: F401 (pytest fixtures)
    _pg_shared,
    _sqlite_template,
    cipher,
    clean_pg_url,
    db,
    db_url,
    migrated_sqlite_url,
    pg_schema_url,
)
