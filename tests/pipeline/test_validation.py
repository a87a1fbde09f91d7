"""Edge validators: camera names, URLs and files under allowed roots (table tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.validation import (
    InputError,
    is_file_source,
    validate_camera_name,
    validate_camera_url,
    validate_fps,
)


@pytest.mark.parametrize("name", ["a", "lobby", "cam-01", "0_front", "a" * 64])
def test_valid_camera_names_pass(name: str):
    assert validate_camera_name(name) == name


@pytest.mark.parametrize("name", ["", "Lobby", "-a", "_a", "a b", "a/b", "a" * 65, "é"])
def test_invalid_camera_names_name_field_and_value(name: str):
    with pytest.raises(InputError) as info:
        validate_camera_name(name)
    assert info.value.field == "name" and str(info.value).endswith(f"got {name!r}")


@pytest.mark.parametrize(
    "url",
    ["rtsp://h/x", "rtsps://u:p@h:322/x", "rtsps://h:8443/s?token=t"],
)
def test_network_urls_are_kept_verbatim(url: str):
    assert validate_camera_url(url, []) == url
    assert not is_file_source(url)


def test_files_resolve_inside_roots_and_file_urls_work(tmp_path: Path):
    clip = tmp_path / "clips" / "a b.avi"
    clip.parent.mkdir()
    clip.write_bytes(b"x")
    assert validate_camera_url(str(clip), [tmp_path]) == str(clip)
    assert validate_camera_url(clip.as_uri(), [tmp_path]) == str(clip)
    assert is_file_source(str(clip)) and is_file_source(clip.as_uri())
    with pytest.raises(InputError, match="outside the allowed roots"):
        validate_camera_url(str(clip), [tmp_path / "elsewhere"])
    (tmp_path / "outside.avi").write_bytes(b"x")
    with pytest.raises(InputError, match="outside"):  # '..' cannot climb out of a root
        validate_camera_url(str(tmp_path / "clips" / ".." / "outside.avi"), [clip.parent])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "must not be empty"),
        ("rtsp://h/a b", "whitespace"),
        ("ftp://h/x", "unsupported scheme 'ftp'"),
        ("javascript:alert(1)", "unsupported scheme"),
        ("rtsp://", "has no host"),
        ("rtsp://h:99999/x", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused_with_reason(url: str, reason: str):
    with pytest.raises(InputError, match=reason) as info:
        validate_camera_url(url, [])
    assert info.value.field == "url"


def test_refused_url_message_masks_the_password():
    with pytest.raises(InputError) as info:
        validate_camera_url("ftp://bob:hunter2@h/x", [])
    assert "hunter2" not in str(info.value) and "bob:***@h" in str(info.value)


@pytest.mark.parametrize("fps", [0, -1, 4.01, float("nan"), float("inf")])
def test_fps_out_of_range_is_refused(fps: float):
    with pytest.raises(InputError, match="fps"):
        validate_fps(fps)


def test_fps_in_range_passes():
    assert validate_fps(4) == 4.0 and validate_fps(0.1) == 0.1
