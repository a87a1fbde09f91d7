"""`xlwatch probe` on real footage, on a live RTSP stream, and on bad input."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from pipeline.app.cli.probe import register
from tests.services import free_port


@pytest.fixture
def cli() -> typer.Typer:
    # a callback makes typer keep `probe` as a sub-command, as in the full xlwatch app
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def run(cli: typer.Typer, *args: str):
    return CliRunner().invoke(cli, ["probe", *args])


def test_probe_json_on_vtest_reports_info_frames_and_chunks(cli, vtest_path):
    result = run(cli, str(vtest_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["codec"], report["width"], report["height"]) == ("msmpeg4", 768, 576)
    assert report["native_fps"] == pytest.approx(10.0)
    assert [f["t"] for f in report["frames"]] == [float(i) for i in range(80)]
    assert report["chunks"][0] == {"start": 0.0, "end": 15.0, "frames": 16}
    assert len(report["chunks"]) == 5
    assert (report["reconnects"], report["dropped"]) == (0, 0)
    assert report["url"] == str(vtest_path)


def test_probe_seconds_and_fps_limit_the_sample(cli, h264_clip):
    result = run(cli, str(h264_clip), "--seconds", "3", "--fps", "2", "--json")
    report = json.loads(result.stdout)
    # 25 fps frames lie 0.04 s apart: the first at or after each half second is kept
    times = [f["t"] for f in report["frames"]]
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=0.041)
    assert report["keyframe_interval"] == pytest.approx(1.0)


def test_probe_text_output_names_codec_and_chunks(cli, h264_clip):
    result = run(cli, str(h264_clip))
    assert result.exit_code == 0
    assert "h264 320x240 25.00 fps" in result.stdout and "6 frames in 1 chunks" in result.stdout


@pytest.mark.slow
def test_probe_live_rtsp_masks_url_and_samples(cli, gst_rtsp):
    url = gst_rtsp.url.replace("rtsp://", "rtsp://viewer:pw123@")  # server ignores auth
    result = run(cli, url, "--seconds", "2.5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["url"].startswith("rtsp://viewer:***@") and "pw123" not in result.stdout
    assert report["codec"] == "h264" and report["native_fps"] == pytest.approx(25.0)
    times = [f["t"] for f in report["frames"]]
    assert len(times) >= 2 and times == sorted(times)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://cam/x", "unsupported scheme"),
        ("/nonexistent/clip.mp4", "file not found"),
        (f"rtsp://u:secret@127.0.0.1:{free_port()}/x", "refused"),
    ],
)
def test_probe_bad_input_exits_nonzero_with_masked_message(cli, url, needle):
    result = run(cli, url, "--seconds", "1")
    assert result.exit_code == 1
    assert needle in result.output.lower() and "secret" not in result.output


def test_probe_rejects_bad_fps(cli, h264_clip):
    result = run(cli, str(h264_clip), "--fps", "0")
    assert result.exit_code != 0 and "fps" in result.output
