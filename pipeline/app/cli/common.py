"""Shared CLI helpers: load the config, open the database, print JSON or a table, fail clearly.

Every command module uses these so errors look the same everywhere: one line on stderr
that names the field and the value (credentials masked) and a non-zero exit status
(1: refused input, 3: database unreachable, worth retrying). Nothing here prints a
decrypted camera URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer

from pipeline.config import ConfigError, XLWatchConfig, load_config
from pipeline.validation import InputError, mask_text
from storage.db import Database, DatabaseUnavailable, open_database
from storage.records import RecordError
from storage.secrets import SecretError, UrlCipher, load_cipher

EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 3

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="XLWATCH_CONFIG", help="YAML config file.",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    typer.echo(f"error: {mask_text(message)}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the project's refusal exceptions into one clear line and an exit status."""
    try:
        yield
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except (ConfigError, InputError, RecordError, SecretError) as exc:
        fail(str(exc))


def get_config(path: Path | None) -> XLWatchConfig:
    with cli_errors():
        return load_config(path)


@dataclass(frozen=True)
class Storage:
    config: XLWatchConfig
    db: Database
    cipher: UrlCipher


@contextlib.contextmanager
def open_storage(cfg: XLWatchConfig) -> Iterator[Storage]:
    """The database (migrated) and the URL cipher of this deployment; closed on exit."""
    with cli_errors():
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            db = open_database(cfg.database_url)
        except ValueError as exc:
            fail(str(exc))
        cipher = load_cipher(cfg.data_dir, cfg.secret)
    try:
        with cli_errors():
            yield Storage(cfg, db, cipher)
    finally:
        db.close()


def iso_time(epoch: float | None, tz: str = "UTC") -> str | None:
    """Epoch seconds as ISO-8601 in the given zone (the operator's local time)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz)).isoformat(timespec="seconds")


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain, untruncated table (stable output for scripts and tests)."""
    if not rows:
        typer.echo("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
               .rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
