"""Cameras over HTTP: listing, adding, refusing bad input without storing anything."""

from __future__ import annotations

import pytest


def test_added_camera_is_listed_with_masked_url(client, lobby):
    assert lobby["url"] == "rtsp://alice:***@10.0.0.5/live"
    r = client.get("/cameras")
    assert r.status_code == 200
    assert [c["name"] for c in r.json()] == ["lobby"]
    assert "s3cret" not in r.text
    status = client.get("/cameras/lobby").json()
    assert status["state"] == "new" and status["fps"] == 1.0


BAD = [
    # (body, status, field, value)
    ({"name": "Bad Name", "url": "rtsp://h/x"}, 400, "name", "Bad Name"),
    ({"name": "cam", "url": "ftp://h/x"}, 400, "url", "ftp://h/x"),
    ({"name": "cam", "url": "/etc/passwd"}, 400, "url", "/etc/passwd"),
    ({"name": "cam", "url": "rtsp://h/x", "fps": 9}, 422, "fps", "9"),
    ({"name": "cam", "url": "rtsp://h/x", "colour": "red"}, 422, "colour", "red"),
    ({"name": "cam", "url": "rtsp://h/x", "backend": "gpt"}, 422, "backend", "gpt"),
    ({"url": "rtsp://h/x"}, 422, "name", "missing"),
]


@pytest.mark.parametrize("body,code,field,value", BAD, ids=[b[2] + "=" + b[3] for b in BAD])
def test_bad_camera_is_refused_naming_field_and_value_and_nothing_is_stored(
        client, body, code, field, value):
    r = client.post("/cameras", json=body)
    assert r.status_code == code
    assert field in r.text and value in r.text
    assert client.get("/cameras").json() == []


def test_duplicate_camera_name_conflicts_and_keeps_the_first(client, lobby):
    r = client.post("/cameras", json={"name": "lobby", "url": "rtsp://other/x"})
    assert r.status_code == 409 and "lobby" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "name_taken"
    assert [c["url"] for c in client.get("/cameras").json()] == [lobby["url"]]


def test_remove_camera_then_unknown_camera_is_404(client, lobby):
    assert client.delete("/cameras/lobby").status_code == 204
    assert client.get("/cameras").json() == []
    r = client.get("/cameras/lobby")
    assert r.status_code == 404 and "lobby" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "camera_not_found"
    assert client.delete("/cameras/lobby").status_code == 404


def test_patch_changes_the_cameras_own_settings_and_refuses_bad_values(client):
    created = client.post("/cameras", json={"name": "gate", "url": "rtsp://10.0.0.8/s"})
    assert created.status_code == 201 and created.json()["fps"] == 1.0
    patched = client.patch("/cameras/gate", json={"fps": 2, "backend": "videoxl2",
                                                  "enabled": False})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["fps"] == 2.0 and body["backend"] == "videoxl2" and body["enabled"] is False
    for bad in ({"fps": 9}, {"backend": "gpt"}, {"colour": "red"}):
        resp = client.patch("/cameras/gate", json=bad)
        assert resp.status_code == 422, resp.text
    assert client.get("/cameras/gate").json()["fps"] == 2.0  # refused: nothing changed
    assert client.patch("/cameras/nosuch", json={"fps": 1}).status_code == 404


@pytest.mark.parametrize("body", [
    {"name": "cam", "url": "rtsp://alice:s3cret@10.0.0.5/" + "x" * 5000},
    {"name": "cam", "url": ["rtsp://alice:s3cret@10.0.0.5/live"]},
    {"name": "cam", "url": {"u": "rtsp://alice:s3cret@10.0.0.5/live"}},
], ids=["too-long", "a-list", "a-mapping"])
def test_a_refused_camera_url_is_never_echoed_with_its_password(client, body):
    r = client.post("/cameras", json=body)
    assert r.status_code == 422, r.text
    assert "s3cret" not in r.text and len(r.text) < 1000
    assert r.json()["error"]["details"][0]["loc"] == ["body", "url"]
    assert client.get("/cameras").json() == []  # nothing stored


def test_an_oversized_question_is_refused_without_echoing_it(client, lobby):
    r = client.post("/ask", json={"camera": "lobby", "question": "why " * 25_000})
    assert r.status_code == 422 and len(r.text) < 1000
    assert "100000 characters" in r.text


def test_post_refuses_a_file_that_is_not_video_naming_the_field(client, cfg):
    bad = cfg.data_dir / "notes.avi"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"just notes\n")
    r = client.post("/cameras", json={"name": "notes", "url": str(bad)})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(
        "url: is not a readable video")
    assert r.json()["error"]["field"] == "url"
    assert client.get("/cameras").json() == []
    web = client.post("/cameras", json={"name": "web", "url": "http://10.0.0.9/mjpeg"})
    assert web.status_code == 400 and "unsupported scheme 'http'" in web.text
