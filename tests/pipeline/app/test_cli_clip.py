"""`xlwatch clip CAMERA START END -o FILE`: with no service answering, the clip is cut
from the data dir's recordings (the same `ServiceAPI.clip` the API serves); bad times
and unrecorded intervals exit 1 naming the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.app.cli import app
from pipeline.config import load_config
from tests.pipeline.record.recorded import KEYFRAME_S, footage, frame_times, ingest_camera
from tests.services import free_port


@pytest.fixture
def recorded_config(tmp_path, vtest_path):
    path = tmp_path / "xlwatch.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nallowed_roots: [{tmp_path}]\n"
                    f"api: {{host: 127.0.0.1, port: {free_port()}}}\n"
                    "camera_defaults:\n  record: {mode: continuous, segment_s: 4}\n")
    cfg = load_config(path, env={})
    ingest_camera(cfg, "lobby", footage(tmp_path, vtest_path, seconds=12))
    from pipeline.record.layout import camera_dir, list_segments

    origin = list_segments(camera_dir(cfg.data_dir, "lobby"))[0].wall_start
    return str(path), origin


def test_clip_writes_a_playable_mp4_of_the_interval(recorded_config, tmp_path):
    config, origin = recorded_config
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(app, ["clip", "lobby", f"{origin + 5:.3f}", f"{origin + 9:.3f}",
                                   "-o", str(out), "--config", config, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert origin + 5 - KEYFRAME_S <= info["start"] <= origin + 5
    times = frame_times(out)
    assert times[-1] + 0.1 == pytest.approx(origin + 9 - info["start"], abs=0.11)


@pytest.mark.parametrize(("start", "end", "message"), [
    ("soon", "1790000000", "start: expected epoch seconds or an ISO-8601 time; got 'soon'"),
    ("1790000010", "1790000000", "end: must be after start"),
    ("2001-01-01T00:00:00", "2001-01-01T00:01:00", "start: no recording of this camera"),
])
def test_bad_clip_requests_exit_1_naming_the_field(recorded_config, tmp_path, start, end,
                                                   message):
    config, _ = recorded_config
    res = CliRunner().invoke(app, ["clip", "lobby", start, end, "-o",
                                   str(tmp_path / "x.mp4"), "--config", config])
    assert res.exit_code == 1, res.output
    assert message in res.stderr
    assert not (tmp_path / "x.mp4").exists()
