"""Fixtures for ingest tests: the RTSP servers and clip maker from tests/rtsp.py."""

from tests.rtsp import gst_rtsp, gst_rtsp_factory, h264_clip, perl_rtsp  # noqa: F401 (fixtures)
