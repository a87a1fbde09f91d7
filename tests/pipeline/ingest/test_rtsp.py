"""Live ingest against real RTSP servers on 127.0.0.1 (GStreamer RTSP server over TCP;
rtsp-server-perl fed by ffmpeg over UDP): sampling, reconnect after a server dies,
a server that never returns, and isolation between cameras."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest

from pipeline.ingest.errors import IngestError
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.supervisor import CameraIngest, iter_chunks
from pipeline.messages import CameraState, CameraStatus, FrameChunk
from tests.services import free_port

FAST = dict(open_timeout=3.0, read_timeout=2.0, backoff_initial=0.2, backoff_max=0.4)


def wait_for(ingest: CameraIngest, cond: Callable[[CameraStatus], bool], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ingest.status()
        if cond(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting; last status {ingest.status()}")


@pytest.fixture
def make_ingest():
    """CameraIngest factory whose cameras are always stopped, even when a test fails."""
    made: list[CameraIngest] = []

    def make(*args, **kwargs) -> CameraIngest:
        made.append(CameraIngest(*args, **kwargs))
        return made[-1]

    yield make
    for ingest in made:
        ingest.stop(timeout=5)


class Collector:
    def __init__(self) -> None:
        self.chunks: list[FrameChunk] = []
        self.lock = threading.Lock()

    def __call__(self, chunk: FrameChunk) -> None:
        with self.lock:
            self.chunks.append(chunk)

    @property
    def times(self) -> list[float]:
        return [t for c in self.chunks for t in c.times]


@pytest.mark.slow
def test_rtsp_tcp_stream_samples_one_frame_per_second_monotonic(gst_rtsp_factory):
    server = gst_rtsp_factory(seconds=4.0)
    chunks = list(iter_chunks(server.url, IngestOptions(**FAST), camera="door"))
    times = [t for c in chunks for t in c.times]
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.05)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert chunks[0].wall_origin == pytest.approx(time.time() - 4.0, abs=2.0)


@pytest.mark.slow
def test_udp_reader_gets_stream_pushed_by_ffmpeg_to_perl_relay(perl_rtsp, make_ingest):
    collector = Collector()
    options = IngestOptions(transport="udp", **FAST)
    ingest = make_ingest("yard", perl_rtsp.url, options, on_chunk=collector)
    ingest.start()
    wait_for(ingest, lambda s: s.frames_sampled >= 4, timeout=15)
    ingest.stop()
    times = collector.times
    assert len(times) >= 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.9 <= g <= 1.6 for g in gaps), gaps


@pytest.mark.slow
def test_server_killed_midstream_reconnects_and_times_stay_monotonic(gst_rtsp_factory, make_ingest):
    server = gst_rtsp_factory(seconds=20.0)
    collector = Collector()
    ingest = make_ingest("porch", server.url, IngestOptions(**FAST), on_chunk=collector)
    ingest.start()
    before = wait_for(ingest, lambda s: s.frames_sampled >= 3, timeout=10)
    assert before.state == CameraState.LIVE
    server.kill()
    killed_at = time.time()
    down = wait_for(ingest, lambda s: s.state == CameraState.RECONNECTING, timeout=5)
    assert down.last_error and "'porch'" in down.last_error
    time.sleep(2.0)
    server.start()  # the same camera comes back on the same port
    back_at = time.time()
    server_back = wait_for(ingest, lambda s: s.state == CameraState.LIVE, timeout=10)
    wait_for(ingest, lambda s: s.frames_sampled >= server_back.frames_sampled + 2, timeout=10)
    ingest.stop()
    assert ingest.status().reconnects >= 1
    times = collector.times
    assert len(times) >= 5
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), times
    origin = collector.chunks[0].wall_origin
    # times follow the wall clock through the outage: nothing sampled while it was down
    # (pts may run up to ~1 s ahead after the server's initial burst), frames after it
    outage = (killed_at - origin + 1.1, back_at - origin - 0.1)
    assert not [t for t in times if outage[0] < t < outage[1]], (outage, times)
    assert max(times) >= back_at - origin


@pytest.mark.slow
def test_server_that_never_returns_leaves_camera_reconnecting_with_error(
    gst_rtsp_factory, make_ingest
):
    server = gst_rtsp_factory(seconds=10.0)
    ingest = make_ingest("shed", server.url, IngestOptions(**FAST))
    ingest.start()
    wait_for(ingest, lambda s: s.state == CameraState.LIVE, timeout=10)
    server.kill()
    status = wait_for(ingest, lambda s: s.reconnects >= 3, timeout=10)
    assert status.state == CameraState.RECONNECTING
    assert "refused" in (status.last_error or "").lower()
    assert ingest.join(timeout=0.1) is False  # the loop keeps retrying, nothing raised
    ingest.stop()
    assert ingest.status().state == CameraState.STOPPED


def test_unreachable_camera_retries_while_another_camera_finishes(h264_clip, make_ingest):
    dead = make_ingest(
        "dead", f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/x", IngestOptions(**FAST)
    )
    alive_chunks = Collector()
    alive = make_ingest("alive", str(h264_clip), IngestOptions(**FAST), on_chunk=alive_chunks)
    dead.start()
    alive.start()
    assert alive.join(timeout=10)
    status = wait_for(dead, lambda s: s.reconnects >= 2, timeout=5)
    dead.stop()
    alive.stop()
    assert alive.status().state == CameraState.FINISHED and len(alive_chunks.times) == 6
    assert status.state == CameraState.RECONNECTING
    assert "hunter2" not in status.last_error and "admin:***@" in status.last_error


@pytest.mark.slow
def test_stalled_server_is_detected_by_read_timeout_and_reconnected(gst_rtsp_factory, make_ingest):
    server = gst_rtsp_factory(seconds=20.0)
    ingest = make_ingest("attic", server.url, IngestOptions(**FAST))
    ingest.start()
    wait_for(ingest, lambda s: s.state == CameraState.LIVE, timeout=10)
    os.kill(server.proc.pid, signal.SIGSTOP)  # connection stays open, no more packets
    try:
        stalled = wait_for(ingest, lambda s: s.state == CameraState.RECONNECTING, timeout=8)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert "'attic'" in stalled.last_error and "stalled" in stalled.last_error
    wait_for(ingest, lambda s: s.state == CameraState.LIVE, timeout=10)
    ingest.stop()


def test_silent_server_times_out_on_open_with_clear_error():
    with socket.socket() as listener:  # accepts TCP, never answers RTSP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam"
        started = time.monotonic()
        with pytest.raises(IngestError) as info:
            list(iter_chunks(url, IngestOptions(open_timeout=1.0, read_timeout=1.0), "mute"))
    assert time.monotonic() - started < 5
    assert "'mute'" in str(info.value) and "timed out" in str(info.value)
