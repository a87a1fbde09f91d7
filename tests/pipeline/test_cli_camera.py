"""`xlwatch camera add|list|remove` against a real database (SQLite file and PostgreSQL).

Each refusal must exit non-zero, name the field and the value, and leave the cameras
table byte-for-byte as it was. The password of a camera URL must never appear in CLI
output, logs or the SQLite file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from pipeline.app.cli import app
from storage.db import open_database
from tests.e2e.clips import synthetic_clip
from tests.storage.fixtures import (  # noqa: F401 (pytest fixtures)
    _pg_shared,
    _sqlite_template,
    clean_pg_url,
    migrated_sqlite_url,
)

SECRET_URL = "rtsp://alice:s3cret@10.0.0.5:554/stream1"


@pytest.mark.parametrize(("content", "why"), [
    (b"", "is not a readable video"), (b"\x00garbage" * 200, "is not a readable video"),
    (b"just some notes\n", "is not a readable video"),
], ids=["empty", "corrupt", "text"])
def test_camera_add_refuses_a_file_that_is_not_video_and_stores_nothing(
        sqlite_cli, content, why):
    (sqlite_cli.root / "clips" / "bad.avi").write_bytes(content)
    result = sqlite_cli("camera", "add", "bad", "clips/bad.avi")
    assert result.exit_code != 0 and "url: " in result.output and why in result.output
    assert sqlite_cli.cameras_rows() == []


def test_camera_add_refuses_http_sources_the_reader_cannot_open(sqlite_cli):
    result = sqlite_cli("camera", "add", "web", "https://cam.example/mjpeg")
    assert result.exit_code != 0 and "unsupported scheme 'https'" in result.output
    assert sqlite_cli.cameras_rows() == []


@dataclass
class Cli:
    root: Path
    env: dict[str, str]
    db_url: str

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env)

    def cameras_rows(self) -> list[tuple]:
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text("SELECT * FROM cameras ORDER BY id")))
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Cli:
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "clean_pg_url"
    return _make_cli(tmp_path, monkeypatch, request.getfixturevalue(fixture))


@pytest.fixture
def sqlite_cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Cli:
    """For the many input-refusal cases, which never reach a database-specific path."""
    return _make_cli(tmp_path, monkeypatch, request.getfixturevalue("migrated_sqlite_url"))


def _make_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Cli:
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    (tmp_path / "clips").mkdir()
    synthetic_clip(tmp_path / "clips" / "door.avi")
    config = tmp_path / "xlwatch.yaml"
    config.write_text("camera_defaults:\n  fps: 1\ncameras:\n  slow:\n    fps: 0.5\n")
    env = {"XLWATCH_CONFIG": str(config), "XLWATCH_DATA_DIR": str(data_dir),
           "XLWATCH_DB_URL": db_url, "XLWATCH_SECRET_KEY": ""}
    monkeypatch.delenv("XLWATCH_SECRET_KEY", raising=False)
    return Cli(tmp_path, env, db_url)


def test_add_list_remove_round_trip(cli: Cli):
    added = cli("camera", "add", "lobby", SECRET_URL, "--fps", "2", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["url"] == "rtsp://alice:***@10.0.0.5:554/stream1"
    assert cli("camera", "add", "door", "clips/door.avi").exit_code == 0
    assert cli("camera", "add", "slow", "rtsps://cam.example/mjpeg").exit_code == 0
    listed = json.loads(cli("camera", "list", "--json").stdout)
    assert [(c["name"], c["fps"]) for c in listed] == [("door", 1.0), ("lobby", 2.0),
                                                       ("slow", 0.5)]
    door = next(c for c in listed if c["name"] == "door")
    assert door["url"] == str(cli.root / "clips" / "door.avi")
    removed = cli("camera", "remove", "lobby")
    assert removed.exit_code == 0 and "lobby" in removed.stdout
    table = cli("camera", "list").stdout
    assert "lobby" not in table and "door" in table


def test_password_never_in_output_logs_or_database_file(cli: Cli, caplog):
    caplog.set_level(logging.DEBUG)
    outputs = [cli("camera", "add", "lobby", SECRET_URL), cli("camera", "list"),
               cli("camera", "list", "--json"),
               cli("camera", "add", "lobby", SECRET_URL),  # refused: duplicate
               cli("camera", "add", "other", SECRET_URL.replace("rtsp", "ftp"))]
    for result in outputs:
        assert "s3cret" not in result.output
    assert "alice:***@" in outputs[1].stdout
    assert "s3cret" not in caplog.text
    raw = b"".join(p.read_bytes() for p in (cli.root / "data").glob("*"))
    assert b"s3cret" not in raw
    assert "s3cret" not in repr(cli.cameras_rows())  # the PostgreSQL rows, too
    with open_database(cli.db_url).session() as s:
        from storage import repo
        from storage.secrets import load_cipher

        assert repo.camera_url(s, "lobby", load_cipher(cli.root / "data")) == SECRET_URL


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["Lobby", "rtsp://h/x"], "name", "Lobby"),
        (["_lobby", "rtsp://h/x"], "name", "_lobby"),
        (["a" * 65, "rtsp://h/x"], "name", "a" * 65),
        (["lobby", "ftp://alice:s3cret@h/x"], "url", "ftp://alice:***@h/x"),
        (["lobby", "rtsp:///nohost"], "url", "rtsp:///nohost"),
        (["lobby", "/etc/hostname"], "url", "/etc/hostname"),
        (["lobby", "clips/missing.avi"], "url", "clips/missing.avi"),
        (["lobby", "clips"], "url", "clips"),
        (["lobby", "rtsp://h/x", "--fps", "0"], "fps", "0.0"),
        (["lobby", "rtsp://h/x", "--fps", "5"], "fps", "5.0"),
    ],
)
def test_add_refusal_exits_nonzero_names_field_and_value_and_changes_nothing(
    sqlite_cli: Cli, args: list[str], field: str, value: str
):
    _assert_refused_unchanged(sqlite_cli, args, field, value)


def test_duplicate_name_refused_and_table_unchanged(cli: Cli):
    _assert_refused_unchanged(cli, ["taken", "rtsp://h/y"], "name", "taken")


def _assert_refused_unchanged(cli: Cli, args: list[str], field: str, value: str) -> None:
    assert cli("camera", "add", "taken", "rtsp://h/first").exit_code == 0
    before = cli.cameras_rows()
    result = cli("camera", "add", *args)
    assert result.exit_code != 0
    assert f"{field}: " in result.stderr and value in result.stderr, result.stderr
    assert "s3cret" not in result.output
    assert cli.cameras_rows() == before


def test_file_symlink_escaping_allowed_roots_is_refused(sqlite_cli: Cli):
    cli = sqlite_cli
    (cli.root / "clips" / "escape.avi").symlink_to("/etc/hostname")
    result = cli("camera", "add", "sneaky", "clips/escape.avi")
    assert result.exit_code != 0 and "outside the allowed roots" in result.stderr
    assert cli.cameras_rows() == []


def test_remove_unknown_or_invalid_name_is_refused(cli: Cli):
    assert cli("camera", "add", "lobby", "rtsp://h/x").exit_code == 0
    before = cli.cameras_rows()
    for name, text in (("ghost", "camera: no such camera; got 'ghost'"),
                       ("Bad!", "name: must match")):
        result = cli("camera", "remove", name)
        assert result.exit_code != 0 and text in result.stderr
    assert cli.cameras_rows() == before


def test_unreachable_database_exits_3_without_leaking_password(sqlite_cli: Cli):
    cli = sqlite_cli
    env = {**cli.env, "XLWATCH_DB_URL":
           "postgresql://bob:hunter2@127.0.0.1:1/x?connect_timeout=2"}
    result = CliRunner().invoke(app, ["camera", "list"], env=env)
    assert result.exit_code == 3
    assert "hunter2" not in result.output and "bob:***@" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_ask_refuses_a_time_that_is_not_finite_without_a_traceback(value):
    from pipeline.app.cli import app

    res = CliRunner().invoke(app, ["ask", "lobby", "anyone?", "--since", value])
    assert res.exit_code != 0 and "since: expected a finite number" in res.output
    assert "Traceback" not in res.output
