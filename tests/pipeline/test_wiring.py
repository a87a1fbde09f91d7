"""One source of truth for a camera's settings: the config's, then the row's fps and
backend over them; ingest, placement and questions all read `camera_settings`. Real
SQLite."""

from __future__ import annotations

import pytest

from pipeline.config import config_from_dict
from pipeline.wiring import (
    backend_of,
    camera_settings,
    cipher,
    database,
    desired_cameras,
    ingest_options,
    open_camera,
    settings_of,
)
from storage import repo


@pytest.fixture
def cfg(tmp_path):
    return config_from_dict({
        "data_dir": str(tmp_path / "data"),
        "camera_defaults": {"fps": 1, "timezone": "Europe/Berlin"},
        "cameras": {"yard": {"fps": 0.5, "transport": "udp"}},
    })


def add(cfg, name, fps, **options):
    with database(cfg).session() as s:
        return repo.add_camera(s, name, f"rtsp://10.0.0.7/{name}", cipher(cfg), fps=fps,
                               options=options)


@pytest.mark.parametrize(("name", "row_fps", "options", "fps", "backend"), [
    ("lobby", 2.0, {}, 2.0, "cv"),  # the row's fps beats camera_defaults
    ("yard", 3.0, {"backend": "videoxl2"}, 3.0, "videoxl2"),  # ...and cameras.<name>
])
def test_the_rows_fps_and_backend_win_over_the_config(cfg, name, row_fps, options, fps,
                                                      backend):
    row = add(cfg, name, row_fps, **options)
    settings = camera_settings(cfg, row)
    assert settings.fps == fps and backend_of(cfg, settings) == backend
    assert settings.timezone == "Europe/Berlin"  # the rest still comes from the config
    assert settings_of(cfg, database(cfg), name) == settings


def test_ingest_placement_and_questions_read_the_same_settings(cfg):
    add(cfg, "yard", 3.0, backend="videoxl2")
    _, settings, url = open_camera(cfg, "yard")
    assert url == "rtsp://10.0.0.7/yard"
    options = ingest_options(settings)
    assert options.fps == 3.0 and options.transport == "udp"  # cameras.yard kept
    plans, _ = desired_cameras(cfg, database(cfg))
    assert plans["yard"].backend == "videoxl2" and plans["yard"].fps == 3.0


def test_a_changed_fps_or_backend_changes_the_plans_settings_key(cfg):
    add(cfg, "lobby", 1.0)
    before = desired_cameras(cfg, database(cfg))[0]["lobby"].settings_key
    with database(cfg).session() as s:
        repo.update_camera(s, "lobby", fps=2.0)
    after = desired_cameras(cfg, database(cfg))[0]["lobby"].settings_key
    assert before != after


def test_a_disabled_row_is_not_wanted(cfg):
    add(cfg, "lobby", 1.0)
    with database(cfg).session() as s:
        repo.update_camera(s, "lobby", enabled=False)
    plans, names = desired_cameras(cfg, database(cfg))
    assert plans == {} and names == {"lobby"}
