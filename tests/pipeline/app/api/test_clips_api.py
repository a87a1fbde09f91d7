"""`GET /clips/{camera}`: the recording of an answer's interval as a playable MP4, the
`clip_url` of answers and alerts, `latest.jpg`, and bad clip requests in the one error
shape. The camera is recorded through the ingest path `xlwatch serve` runs."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.alerts.relay import AlertRelay
from pipeline.app.api.app import create_app
from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.query.core import QueryCore
from pipeline.wiring import database
from tests.pipeline.alerts.test_relay import make_alert
from tests.pipeline.record.recorded import (
    KEYFRAME_S,
    footage,
    frame_at,
    frame_times,
    ingest_camera,
    recording_cfg,
)

FRAME_S = 0.1  # the footage runs at 10 fps


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, request):
    """A camera `lobby` recorded from 30 s of vtest.avi; the API over its data dir."""
    from tests.conftest import VTEST

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    tmp = tmp_path_factory.mktemp("clips")
    cfg = recording_cfg(tmp)
    url = footage(tmp, VTEST)
    status = ingest_camera(cfg, "lobby", url)
    assert status["recording"]["errors"] == 0 and status["recording"]["segments_written"] > 2
    service = DatabaseServiceAPI(database(cfg), cfg)
    service.attach_query(QueryCore(cfg).answer)
    with TestClient(create_app(service, cfg)) as client:
        yield client, cfg, url


def test_the_clip_of_an_answer_interval_plays_that_interval(recorded, tmp_path):
    client, cfg, source = recorded
    r = client.post("/ask", json={"camera": "lobby", "question": "when did a person enter?"})
    assert r.status_code == 200, r.text
    intervals = [i for i in r.json()["intervals"] if i["end"] - i["start"] >= 2.0]
    assert intervals, r.json()
    iv = intervals[0]
    assert iv["clip_url"] == f"/clips/lobby?start={iv['start']:.3f}&end={iv['end']:.3f}"

    resp = client.get(iv["clip_url"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "video/mp4"
    clip = tmp_path / "answer.mp4"
    clip.write_bytes(resp.content)
    times = frame_times(clip)
    first = float(resp.headers["x-clip-start"])
    # Cut at keyframes: the clip starts at the last keyframe at or before the interval's
    # start, so at most one keyframe interval (1.2 s here) early, never late; it ends
    # with the last frame before the interval's end.
    assert iv["start"] - KEYFRAME_S - 1e-3 <= first <= iv["start"] + 1e-3
    assert times[0] == pytest.approx(0.0, abs=1e-6)
    duration = times[-1] + FRAME_S
    assert duration == pytest.approx(iv["end"] - first, abs=FRAME_S + 1e-3)
    assert len(times) == round(duration / FRAME_S), "no frame missing or repeated"
    # The clip's first frame is the recorded stream's frame at that moment, bit for bit
    # once decoded (remuxed, not re-encoded): t on the camera's clock maps to the file.
    t_first = iv["t_start"] - (iv["start"] - first)
    assert np.array_equal(frame_at(clip, 0.0), frame_at(source, t_first))
    mid = (iv["t_end"] - iv["t_start"]) / 2
    assert np.array_equal(frame_at(clip, iv["start"] - first + mid),
                          frame_at(source, iv["t_start"] + mid))


def test_an_alert_links_the_recording_around_its_moment(recorded):
    client, cfg, _ = recorded
    rec = cfg.camera("lobby").record
    AlertRelay(database(cfg)).record(make_alert(0))
    (alert,) = client.get("/alerts", params={"camera": "lobby"}).json()
    w = alert["wall_time"]
    assert alert["clip_url"] == (f"/clips/lobby?start={w - rec.pre_s:.3f}"
                                 f"&end={w + rec.post_s:.3f}")


def test_latest_jpg_is_the_cameras_newest_snapshot(recorded):
    client, _, _ = recorded
    r = client.get("/cameras/lobby/latest.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    snapshot = client.get("/cameras/lobby").json()["snapshot_url"]
    assert r.content == client.get(snapshot).content


def _recorded_span(client) -> tuple[float, float]:
    r = client.post("/ask", json={"camera": "lobby", "question": "when did a person enter?"})
    iv = r.json()["intervals"][0]
    return iv["start"], iv["end"]


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"start": "yesterday", "end": "1790000000"}, 400, "start"),
    ({"start": "1790000000", "end": "nan"}, 400, "end"),
    ({"start": "1790000000", "end": "inf"}, 400, "end"),
    ({"end": "1790000000"}, 422, "start"),
    ({"start": "1790000010", "end": "1790000000"}, 400, "end"),
    ({"start": "1790000000", "end": "1790000000"}, 400, "end"),
    ({"start": "1790000000", "end": "1790009000"}, 400, "end"),
    ({"start": "1000000000", "end": "2001-09-09T01:46:50+00:00"}, 404, "start"),
])
def test_bad_clip_requests_get_the_one_error_shape_naming_the_field(recorded, params,
                                                                    status, field):
    client, _, _ = recorded
    r = client.get("/clips/lobby", params=params)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field
    assert error["code"] == {422: "invalid_input", 400: "invalid_input",
                             404: "clip_not_found"}[status]
    shown = params.get(field)
    if shown is not None and status != 404:
        assert shown in error["message"] or any(
            d["input"] == shown for d in error.get("details") or []) or (
            math.isclose(float(shown), float(error["message"].rsplit("got ", 1)[1])))


def test_a_clip_of_an_unknown_camera_is_404_camera_not_found(recorded):
    client, _, _ = recorded
    start, end = _recorded_span(client)
    r = client.get("/clips/nope", params={"start": start, "end": end})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "camera_not_found"


def test_clip_times_take_iso_8601_like_ask(recorded, tmp_path):
    from datetime import UTC, datetime

    client, _, _ = recorded
    start, _ = _recorded_span(client)
    iso = [datetime.fromtimestamp(t, UTC).isoformat() for t in (start, start + 3)]
    r = client.get("/clips/lobby", params={"start": iso[0], "end": iso[1]})
    assert r.status_code == 200, r.text
    (tmp_path / "iso.mp4").write_bytes(r.content)
    with av.open(str(tmp_path / "iso.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
