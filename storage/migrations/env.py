"""Alembic environment: runs on the connection storage.db hands over (no alembic.ini).

storage.db.open_database passes an open connection in `config.attributes["connection"]`
so migrations run under the same lock that guards concurrent starts. This file does not
configure logging (the application does) and never reads URLs from the environment.
"""

from __future__ import annotations

from alembic import context

from storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storage migrations run only through storage.db (no connection given)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
