"""Alembic migrations for the XL-Watch schema, run programmatically by storage.db."""
