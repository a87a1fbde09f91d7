"""`xlwatch events` and `alerts` list newest first and page with --before/--limit (here
from the database: no service answers); `--version`, `-h`, shell completion, and help
text on every option of every command."""

from __future__ import annotations

import json

import click
import typer
from typer.testing import CliRunner

from pipeline.alerts.relay import AlertRelay
from pipeline.app.cli import app
from pipeline.config import load_config
from pipeline.wiring import cipher, database
from storage import repo
from storage.records import NewEvent
from tests.pipeline.alerts.test_relay import make_alert
from tests.services import free_port

WALL = 1_790_000_000.0


def setup(tmp_path, events=5, alerts=3):
    path = tmp_path / "xlwatch.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\n"
                    f"api: {{host: 127.0.0.1, port: {free_port()}}}\n")
    cfg = load_config(path, env={})
    db = database(cfg)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/live", cipher(cfg))
        ids = repo.add_events(s, "lobby", [
            NewEvent(kind=("person_enter", "motion")[i % 2], t_start=float(i),
                     wall_start=WALL + i) for i in range(events)])
    alert_ids = [AlertRelay(db).record(make_alert(i)) for i in range(alerts)]
    return str(path), ids, alert_ids


def run(*args):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


def test_events_newest_first_page_by_page_with_before_and_limit(tmp_path):
    cfg, ids, _ = setup(tmp_path)
    first = run("events", "lobby", "--limit", "2", "--config", cfg)
    assert [line.split()[0] for line in first.stdout.splitlines()] == [
        f"#{ids[4]}", f"#{ids[3]}"]
    cursor = first.stderr.strip().removeprefix("(older: --before ").rstrip(")")
    second = run("events", "lobby", "--limit", "2", "--before", cursor, "--json",
                 "--config", cfg)
    assert [e["event_id"] for e in json.loads(second.stdout)] == [ids[2], ids[1]]
    motion = json.loads(run("events", "lobby", "--kind", "motion", "--json",
                            "--config", cfg).stdout)
    assert [e["event_id"] for e in motion] == [ids[3], ids[1]]


def test_alerts_newest_first_with_before_and_kind(tmp_path):
    cfg, _, ids = setup(tmp_path)
    out = run("alerts", "--limit", "2", "--config", cfg)
    assert [line.split()[0] for line in out.stdout.splitlines()] == [f"#{ids[2]}", f"#{ids[1]}"]
    assert f"--before {ids[1]}" in out.stderr
    older = run("alerts", "--before", str(ids[1]), "--json", "--config", cfg)
    assert [json.loads(line)["alert_id"] for line in older.stdout.splitlines()] == [ids[0]]
    assert run("alerts", "--kind", "motion", "--config", cfg).stdout == ""


def test_version_short_help_and_shell_completion():
    assert run("--version").stdout.startswith("xlwatch ")
    short = run("-h").stdout
    assert "--install-completion" in short and "--show-completion" in short
    assert "Usage" in run("events", "-h").stdout


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_option_and_argument_of_every_command_has_help_text():
    root = typer.main.get_command(app)
    missing = [f"{path}: {p.name}" for path, cmd in _commands(root) for p in cmd.params
               if isinstance(p, click.Option) and not p.help and p.name != "help"]
    missing += [f"{path}: (command)" for path, cmd in _commands(root) if not cmd.help]
    assert missing == []
