"""Config tree: YAML loading, env overrides, per-camera merge, error paths, masking."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.app.cli import app
from pipeline.config import ConfigError, config_from_dict, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xlwatch.yaml"
    path.write_text(text)
    return path


def test_unknown_key_is_rejected_with_its_full_path(tmp_path: Path):
    path = _write(tmp_path, "cameras:\n  lobby:\n    fps: 2\n    colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "cameras.lobby.colour: unknown key; got 'red'" in str(info.value)


def test_bad_value_error_names_path_and_value(tmp_path: Path):
    path = _write(tmp_path, "cameras:\n  lobby:\n    fps: 9\nengine:\n  top_k: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    problems = info.value.problems
    assert any(p.startswith("cameras.lobby.fps:") and p.endswith("got 9") for p in problems)
    assert any(p.startswith("engine.top_k:") and p.endswith("got 0") for p in problems)


def test_camera_override_wins_over_default_and_others_inherit(tmp_path: Path):
    path = _write(tmp_path, (
        "camera_defaults:\n  fps: 2\n  transport: udp\n  timezone: Europe/Berlin\n"
        "cameras:\n  lobby:\n    fps: 0.5\n  yard: {}\n"
    ))
    cfg = load_config(path, env={})
    assert cfg.camera("lobby").fps == 0.5
    assert cfg.camera("lobby").transport == "udp"  # inherited, not reset to the default
    assert cfg.camera("yard").fps == 2.0
    assert cfg.camera("unlisted").timezone == "Europe/Berlin"


def test_override_breaking_a_cross_field_rule_names_the_camera():
    with pytest.raises(ConfigError, match=r"cameras\.lobby\.backoff_max_s: .*got 1"):
        config_from_dict({"cameras": {"lobby": {"backoff_max_s": 1}}})


def test_env_overrides_beat_yaml_and_secrets_are_masked(tmp_path: Path):
    path = _write(tmp_path, f"data_dir: {tmp_path / 'a'}\ndb_url: sqlite:///{tmp_path}/y.db\n")
    env = {
        "XLWATCH_DATA_DIR": str(tmp_path / "b"),
        "XLWATCH_DB_URL": "postgresql://u:pgpass@127.0.0.1/x",
        "XLWATCH_REDIS_URL": "redis://:redispass@127.0.0.1:6379/0",
        "XLWATCH_SECRET_KEY": "topsecret",
    }
    cfg = load_config(path, env=env)
    assert cfg.data_dir == (tmp_path / "b").resolve()
    assert cfg.database_url == env["XLWATCH_DB_URL"]
    assert cfg.secret == "topsecret"
    dumped = json.dumps(cfg.masked_dict())
    for secret in ("pgpass", "redispass", "topsecret"):
        assert secret not in dumped
    assert "postgresql://u:***@127.0.0.1/x" in dumped


def test_defaults_put_sqlite_and_allowed_roots_under_data_dir(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={"XLWATCH_DATA_DIR": "d"})
    assert cfg.data_dir == tmp_path / "d"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'd' / 'xlwatch.db'}"
    assert cfg.allowed_roots == [tmp_path, tmp_path / "d"]
    assert cfg.backend_for("any") == "cv"


def test_config_is_frozen():
    cfg = config_from_dict({})
    with pytest.raises(ValueError):
        cfg.alerts.cooldown_s = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):  # the engine's own EngineConfig
        cfg.engine.top_k = 3  # type: ignore[misc]


def test_engine_section_is_the_engines_own_config_with_its_defaults():
    from model.engine.config import EngineConfig

    cfg = config_from_dict({"engine": {"top_k": 3}})
    assert isinstance(cfg.engine, EngineConfig)
    assert cfg.engine == EngineConfig(top_k=3)  # one definition: the same defaults


@pytest.mark.parametrize("key", ["stall_timeout_s", "analysis_width", "person_confidence"])
def test_keys_that_did_nothing_are_refused(key):
    section = "camera_defaults" if key == "stall_timeout_s" else "cv"
    with pytest.raises(ConfigError, match=rf"{section}.{key}: unknown key"):
        config_from_dict({section: {key: 1}})


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"api": {"host": "0.0.0.0"}}, "api.token"),
        ({"model": {"backend": "videoxl2"}}, "model.path"),
        ({"cameras": {"Lobby": {}}}, "cameras"),
        ({"camera_defaults": {"timezone": "Mars/Base"}}, "camera_defaults.timezone"),
        ({"camera_defaults": {"off_hours": ["25:00-06:00"]}}, "camera_defaults.off_hours"),
        ({"redis_url": "http://x"}, "redis_url"),
    ],
)
def test_cross_field_and_format_rules_name_their_path(data: dict, path: str):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert any(p.startswith(f"{path}:") for p in info.value.problems), info.value.problems


def test_non_loopback_api_with_token_is_accepted():
    cfg = config_from_dict({"api": {"host": "0.0.0.0", "token": "t0ken"}})
    assert cfg.api.token.get_secret_value() == "t0ken"
    assert cfg.masked_dict()["api"]["token"] == "***"


def test_cli_config_check_prints_resolved_config_masked(tmp_path: Path):
    path = _write(tmp_path, (
        f"data_dir: {tmp_path}\nsecret_key: hush\nredis_url: redis://:rpw@127.0.0.1:6379/0\n"
        "camera_defaults:\n  fps: 3\n"
    ))
    result = CliRunner().invoke(app, ["config", "check", str(path), "--json"], env={})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["camera_defaults"]["fps"] == 3.0
    assert data["secret_key"] == "***"
    assert "rpw" not in result.output and "hush" not in result.output
    plain = CliRunner().invoke(app, ["config", "check", str(path)], env={})
    assert plain.exit_code == 0 and "fps: 3.0" in plain.stdout


def test_cli_config_check_reports_exact_error_and_fails(tmp_path: Path):
    path = _write(tmp_path, "engine:\n  topk: 3\n")
    result = CliRunner().invoke(app, ["config", "check", str(path)], env={})
    assert result.exit_code != 0
    assert "engine.topk: unknown key; got 3" in result.stderr
    bad_yaml = _write(tmp_path, "a: [1,\n")
    result = CliRunner().invoke(app, ["config", "check", str(bad_yaml)], env={})
    assert result.exit_code != 0 and "not valid YAML" in result.stderr


def test_cv_section_is_the_analyzers_own_config_and_names_a_bad_value():
    from model.cv.config import CVConfig

    cfg = config_from_dict({"cv": {"loiter_s": 45}})
    assert cfg.cv == CVConfig(loiter_s=45)
    with pytest.raises(ConfigError, match=r"cv.crowd_min_people: must be > 0; got 0"):
        config_from_dict({"cv": {"crowd_min_people": 0}})


@pytest.mark.parametrize(("rule", "needle"), [
    ("{name: r, kind: bogus}", "alerts.rules[0].kind: expected one of"),
    ("{name: r, kind: crowd, params: {min_count: six}}",
     "alerts.rules[0].params.min_count: expected a number"),
    ("{name: r, kind: crowd, params: {colour: red}}",
     "alerts.rules[0].params.colour: unknown parameter"),
    ("{name: r, kind: person, params: {zone: door}}",
     "alerts.rules[0].params.zone: no zone of that name"),
], ids=["kind", "type", "param", "zone"])
def test_config_check_refuses_a_rule_that_could_never_fire_naming_it(tmp_path, rule, needle):
    path = _write(tmp_path, f"alerts:\n  rules:\n    - {rule}\n")
    res = CliRunner().invoke(app, ["config", "check", str(path)])
    assert res.exit_code != 0 and needle in res.output, res.output
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(path, env={})
