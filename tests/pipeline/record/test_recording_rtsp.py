"""Recording a live RTSP camera (a real GStreamer RTSP server on loopback): H.264 packets
remuxed into MP4 segments that start at keyframes and carry the wall clock of ingest."""

from __future__ import annotations

import time

import av
import pytest

from pipeline.record.layout import camera_dir, list_segments
from pipeline.wiring import camera_ingest
from tests.pipeline.record.recorded import recording_cfg
from tests.rtsp import gst_rtsp_factory  # noqa: F401 (fixture)


def test_an_rtsp_camera_is_recorded_in_keyframe_cut_h264_segments(tmp_path,
                                                                  gst_rtsp_factory):  # noqa: F811
    server = gst_rtsp_factory(seconds=8.0)
    cfg = recording_cfg(tmp_path, segment_s=2)
    cam = cfg.camera("door")
    began = time.time()
    ingest = camera_ingest(cfg, "door", cam, server.url)
    ingest.start()
    deadline = time.monotonic() + 30
    while ingest.status().frames_decoded < 150 and time.monotonic() < deadline:
        ingest.queue.get(timeout=0.5)  # consume chunks as the ingest actor would
    ingest.stop()
    stats = ingest.recorder.stats()
    assert stats["errors"] == 0 and stats["packets_dropped"] == 0, stats
    segments = list_segments(camera_dir(cfg.data_dir, "door"))
    assert len(segments) >= 2, stats
    assert began - 1 <= segments[0].wall_start <= time.time()
    decoded = 0
    for seg in segments:
        with av.open(str(seg.path)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264" and seg.path.suffix == ".mp4"
            packets = [p for p in c.demux(stream) if p.size]
        assert packets[0].is_keyframe, f"{seg.path.name} must start at a keyframe"
        with av.open(str(seg.path)) as c:
            decoded += sum(1 for _ in c.decode(video=0))
    assert decoded >= 100, "the segments decode (25 fps for 4 s and more)"
    total = sum(s.duration for s in segments)
    assert total == pytest.approx(decoded / 25.0, abs=0.5)
