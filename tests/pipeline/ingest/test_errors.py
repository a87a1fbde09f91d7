"""Bad inputs get clear errors naming the camera and the cause, credentials masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest.errors import (
    IngestError,
    StreamOpenError,
    UnsupportedSchemeError,
    mask_url,
)
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.supervisor import iter_chunks
from tests.rtsp import make_h264_clip
from tests.services import free_port


def read_all(url: str, camera: str = "gate", **opts) -> list:
    return list(iter_chunks(url, IngestOptions(open_timeout=3, read_timeout=3, **opts), camera))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
        ("rtsps://u:p%40ss@cam.local/s?x=1", "rtsps://u:***@cam.local/s?x=1"),
        ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),
        ("/videos/a.mp4", "/videos/a.mp4"),
    ],
)
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url", ["http://cam/x.mjpg", "ftp://user:hunter2@host/f.mp4", "udp://127.0.0.1:5000"]
)
def test_unsupported_scheme_names_camera_and_scheme_without_password(url):
    with pytest.raises(UnsupportedSchemeError) as info:
        read_all(url)
    message = str(info.value)
    assert "'gate'" in message and "unsupported scheme" in message
    assert "hunter2" not in message


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("name", "make", "cause"),
    [
        ("missing", lambda d: str(d / "nope.mp4"), "file not found"),
        ("empty", lambda d: write(d / "empty.mp4", b""), "empty file"),
        ("text", lambda d: write(d / "notes.mp4", b"not a video\n" * 100), "not a readable video"),
        (
            "random",
            lambda d: write(d / "noise.avi", bytes(range(256)) * 64),
            "not a readable video",
        ),
        ("directory", lambda d: str(d), "not a regular file"),
    ],
)
def test_unreadable_files_raise_open_error_naming_camera_and_cause(tmp_path, name, make, cause):
    with pytest.raises(StreamOpenError) as info:
        read_all(make(tmp_path))
    assert "'gate'" in str(info.value) and cause in str(info.value), name


def test_truncated_mp4_without_index_is_an_open_error(tmp_path, h264_clip):
    data = h264_clip.read_bytes()
    path = write(tmp_path / "cut.mp4", data[: len(data) // 2])  # moov atom is at the end
    with pytest.raises(StreamOpenError, match="'gate'.*not a readable video"):
        read_all(path)


def test_truncated_stream_file_yields_the_frames_before_the_cut(tmp_path):
    clip = make_h264_clip(tmp_path / "clip.ts", seconds=6.0)
    data = clip.read_bytes()
    path = write(tmp_path / "cut.ts", data[: len(data) // 2])
    times = [t for c in read_all(path, keyframe_only=False) for t in c.times]
    assert 1 <= len(times) < 6
    assert times == sorted(times)


def test_corrupt_bytes_mid_file_are_skipped_not_fatal(tmp_path):
    clip = make_h264_clip(tmp_path / "clip.ts", seconds=6.0)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(4000)  # a burst of zeros inside the stream
    times = [t for c in read_all(write(tmp_path / "bad.ts", bytes(data))) for t in c.times]
    assert len(times) >= 4 and times == sorted(times)


def test_file_without_video_stream_is_rejected(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    with pytest.raises(StreamOpenError, match="no video stream"):
        read_all(str(path))


def test_unreachable_rtsp_host_error_is_masked():
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live"
    with pytest.raises(IngestError) as info:
        read_all(url)
    message = str(info.value)
    assert "'gate'" in message and "refused" in message.lower()
    assert "hunter2" not in message and "admin:***@" in message
