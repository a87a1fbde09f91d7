"""The `record` settings: per-camera overrides merge key by key over camera_defaults,
bad values are refused naming the path and the value, and the start-up disk check
refuses recording cameras whose max_gb exceed recordings.disk_budget_gb."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, config_from_dict
from pipeline.record.budget import DiskBudgetError, check_disk_budget


def test_a_cameras_record_override_keeps_the_other_defaults():
    cfg = config_from_dict({
        "camera_defaults": {"record": {"mode": "continuous", "max_gb": 5, "retain_days": 3}},
        "cameras": {"lobby": {"record": {"mode": "events", "pre_s": 2}},
                    "yard": {"fps": 2}}})
    lobby = cfg.camera("lobby").record
    assert (lobby.mode, lobby.pre_s, lobby.max_gb, lobby.retain_days) == ("events", 2, 5, 3)
    assert cfg.camera("yard").record.mode == "continuous"
    assert config_from_dict({}).camera("any").record.mode == "off"


@pytest.mark.parametrize(("record", "problem"), [
    ({"mode": "always"}, "camera_defaults.record.mode: Input should be 'off', "
                         "'continuous' or 'events'; got 'always'"),
    ({"segment_s": 0}, "camera_defaults.record.segment_s: Input should be greater than or "
                       "equal to 1; got 0"),
    ({"max_gb": -1}, "camera_defaults.record.max_gb: Input should be greater than 0; got -1"),
    ({"event_kinds": ["fire"]}, "camera_defaults.record.event_kinds: unknown event kind "
                                "'fire'"),
    ({"keep": 1}, "camera_defaults.record.keep: unknown key"),
])
def test_bad_record_settings_name_the_path_and_the_value(record, problem):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"camera_defaults": {"record": record}})
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_a_bad_override_names_the_camera():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"cameras": {"lobby": {"record": {"post_s": -3}}}})
    assert "cameras.lobby.record.post_s" in str(err.value) and "-3" in str(err.value)


def test_the_disk_budget_refuses_more_than_it_allows_naming_the_settings(tmp_path):
    cfg = config_from_dict({
        "data_dir": str(tmp_path), "recordings": {"disk_budget_gb": 30},
        "camera_defaults": {"record": {"mode": "continuous", "max_gb": 20}},
        "cameras": {"attic": {"record": {"mode": "off"}}}})
    assert check_disk_budget(cfg, ["lobby", "attic"]) == []  # 20 <= 30; attic records not
    with pytest.raises(DiskBudgetError) as err:
        check_disk_budget(cfg, ["lobby", "yard", "attic"])
    message = str(err.value)
    assert message.startswith("recordings.disk_budget_gb:") and "record.max_gb" in message
    assert "lobby 20, yard 20" in message and message.endswith("got 30")


def test_a_budget_beyond_the_free_disk_is_a_warning_naming_the_setting(tmp_path):
    cfg = config_from_dict({
        "data_dir": str(tmp_path),
        "camera_defaults": {"record": {"mode": "events", "max_gb": 900_000}}})
    (warning,) = check_disk_budget(cfg, ["lobby"])
    assert warning.startswith("record.max_gb: recordings may grow to 900000 GB")


def test_serve_checks_the_budget_over_the_enabled_cameras_in_the_database(tmp_path):
    from pipeline.record.budget import check_service_budget
    from pipeline.wiring import cipher, database
    from storage import repo

    cfg = config_from_dict({
        "data_dir": str(tmp_path), "recordings": {"disk_budget_gb": 25},
        "camera_defaults": {"record": {"mode": "continuous", "max_gb": 20}}})
    db = database(cfg)
    with db.session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/a", cipher(cfg))
    assert check_service_budget(cfg, db) == []
    with db.session() as s:
        repo.add_camera(s, "yard", "rtsp://10.0.0.6/a", cipher(cfg))
    with pytest.raises(DiskBudgetError, match="lobby 20, yard 20"):
        check_service_budget(cfg, db)
    with db.session() as s:
        repo.update_camera(s, "yard", enabled=False)
    assert check_service_budget(cfg, db) == []


def test_serve_refuses_to_start_over_the_budget_naming_the_setting(tmp_path):
    from typer.testing import CliRunner

    from pipeline.app.cli import app
    from pipeline.config import load_config
    from pipeline.wiring import cipher, database
    from storage import repo

    path = tmp_path / "xlwatch.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nrecordings: {{disk_budget_gb: 5}}\n"
                    "camera_defaults:\n  record: {mode: continuous, max_gb: 20}\n")
    cfg = load_config(path, env={})
    with database(cfg).session() as s:
        repo.add_camera(s, "lobby", "rtsp://10.0.0.5/a", cipher(cfg))
    res = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert res.exit_code == 1, res.output
    assert "error: recordings.disk_budget_gb:" in res.stderr and "got 5" in res.stderr
