"""Database handle: engine, sessions, automatic migrations, and outage translation.

Owns `open_database(url)`: it creates the SQLAlchemy engine (SQLite in WAL mode with a busy
timeout, or PostgreSQL with `pool_pre_ping`), applies the Alembic migrations under a lock
(a file lock for SQLite, an advisory lock for PostgreSQL) so several processes may start at
once, and returns a `Database` whose `session()` commits or rolls back and turns connection
failures into `DatabaseUnavailable`, which callers may retry. It holds no queries
(storage/repo.py) and no knowledge of the config tree (pipeline/config.py gives the URL).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.secrets import mask_text, mask_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD = "head"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_PG_MIGRATION_LOCK = 7_311_842_001  # arbitrary advisory-lock id owned by XL-Watch
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or is locked; the operation may be retried."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


@dataclass(frozen=True)
class Database:
    """An engine plus its session factory. Thread-safe; one per process."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def url_masked(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        try:
            with self.sessions.begin() as s:
                yield s
        except exc.DBAPIError as e:
            if _is_outage(e):
                raise DatabaseUnavailable(f"database {self.url_masked}: {_short(e)}") from e
            raise

    def transact(self, work: Callable[[Session], T], *, attempts: int = 3,
                 delay_s: float = 0.5) -> T:
        """Run `work(session)` as one unit of work, retrying it on DatabaseUnavailable with
        jittered exponential waits from `delay_s`; the last failure is re-raised. `work`
        must be safe to repeat (it is: a failed attempt is rolled back)."""
        def unit() -> T:
            with self.session() as s:
                return work(s)

        return retrying(attempts, delay_s)(unit)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except exc.DBAPIError:
            return False

    def close(self) -> None:
        self.engine.dispose()


# SQLite reports both "locked" and "no such table" as OperationalError; only the first
# kind is an outage worth retrying, the second is a bug that must surface as itself.
_SQLITE_OUTAGE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full")


def _is_outage(e: exc.DBAPIError) -> bool:
    if e.connection_invalidated or isinstance(e, exc.InterfaceError):
        return True
    if not isinstance(e, exc.OperationalError):
        return False
    text = str(e.orig).lower()
    if "sqlite" in type(e.orig).__module__:
        return any(word in text for word in _SQLITE_OUTAGE)
    return True


def _short(e: Exception) -> str:
    orig = getattr(e, "orig", None)
    return mask_text(str(orig if orig is not None else e).strip().splitlines()[0])


def create_engine(url: str) -> Engine:
    """An engine tuned for the dialect; raises ValueError on an unsupported URL."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise ValueError(f"db_url: not a database URL; got {mask_text(url)!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(f"db_url: an SQLite database must be a file; got {url!r}")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                  "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ValueError(f"db_url: only sqlite and postgresql are supported; got {mask_url(url)!r}")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DB-API connection)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    """Make each session one real transaction that holds the write lock from its start.

    Left alone, the sqlite3 module runs reads outside any transaction (a session's read and
    its later write are not isolated). A plain deferred BEGIN would fix that but then a
    read-then-write transaction gets SQLITE_BUSY at once, without the busy wait, when
    another process wrote in between. IMMEDIATE makes writers queue on the busy timeout
    instead; sessions are short, so readers waiting briefly is the cheaper trade.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding the process-wide migration lock for this database."""
    if engine.dialect.name == "sqlite":
        lock_path = Path(engine.url.database + ".migrate.lock")
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        conn.commit()
        try:
            yield conn
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()


def migrate(engine: Engine, revision: str = HEAD, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision` under the migration lock."""
    try:
        with _migration_lock(engine) as conn:
            cfg = _alembic_config(conn)
            if down:
                command.downgrade(cfg, revision)
            else:
                command.upgrade(cfg, revision)
            conn.commit()
    except (exc.OperationalError, exc.InterfaceError) as e:
        url = mask_url(engine.url.render_as_string(hide_password=False))
        raise DatabaseUnavailable(f"database {url}: {_short(e)}") from e


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_database(url: str, *, migrate_schema: bool = True) -> Database:
    """Open `url` (sqlite:///file or postgresql://...), apply migrations, return a handle.

    Raises ValueError for an unsupported URL and DatabaseUnavailable when the server
    cannot be reached.
    """
    engine = create_engine(url)
    if migrate_schema:
        try:
            migrate(engine)
        except Exception:
            engine.dispose()
            raise
    log.info("database ready: %s", mask_url(url))
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def retrying(attempts: int, delay_s: float) -> Any:
    """The retry policy for a database outage: up to `attempts` tries, waits doubling
    from `delay_s` with jitter, each retry logged, the last failure re-raised."""
    import tenacity

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(DatabaseUnavailable),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(initial=delay_s, max=30.0, jitter=delay_s / 2),
        before_sleep=lambda state: log.warning(
            "%s; retry %d/%d", state.outcome.exception(), state.attempt_number,
            attempts - 1),
        reraise=True)
