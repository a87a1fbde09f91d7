"""Real RTSP servers on loopback for tests: Debian's GStreamer RTSP server and
rtsp-server-perl fed by the ffmpeg CLI, plus an H.264 clip maker (PyAV).

Servers run as child processes on free 127.0.0.1 ports, are stopped by PID (SIGKILL to
simulate a camera that drops, SIGTERM otherwise) and always cleaned up by the fixtures.
The GStreamer server runs under the SYSTEM python (`/usr/bin/python3`, python3-gi), not
the venv. rtsp-server-perl only relays over UDP, so its readers must use transport="udp".
Reused by the service and deploy tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.services import free_port, missing, port_open, require_binary

SYSTEM_PYTHON = "/usr/bin/python3"

_GST_SERVER = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
port, clip, mount = sys.argv[1], sys.argv[2], sys.argv[3]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( filesrc location="{clip}" ! qtdemux ! h264parse '
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(False)
server.get_mount_points().add_factory(mount, factory)
if server.attach(None) == 0:
    sys.exit("cannot bind")
print("READY", flush=True)
GLib.MainLoop().run()
"""


def make_h264_clip(
    path: Path,
    seconds: float = 4.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    gop: int | None = None,
    bframes: int = 0,
) -> Path:
    """Write an H.264 clip (moving gradient + a frame-index bar) with PyAV.

    `gop`: keyframe interval in frames (default: one per second). The container follows
    the suffix (.mp4 puts the index at the end, so a truncated .mp4 cannot open).
    """
    width, height = size
    gop = gop or fps
    n = round(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {
            "preset": "ultrafast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": str(bframes),
        }
        xs = np.arange(width, dtype=np.int32)[None, :]
        ys = np.arange(height, dtype=np.int32)[:, None]
        for i in range(n):
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (xs + 4 * i) % 256
            img[..., 1] = (ys + 2 * i) % 256
            img[..., 2] = 128
            img[: height // 8, : max(1, (i * width) // max(n, 1))] = 255  # progress bar
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _wait_port(proc: subprocess.Popen, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        if port_open("127.0.0.1", port, timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on 127.0.0.1:{port} within {timeout} s")


def _end(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class GstRtspServer:
    """GStreamer RTSP server serving `clip` (H.264 .mp4) at rtsp://127.0.0.1:port/mount."""

    clip: Path
    port: int = field(default_factory=free_port)
    mount: str = "/cam"
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self) -> GstRtspServer:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, "-c", _GST_SERVER, str(self.port), str(self.clip), self.mount],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.proc, self.port)
        return self

    def kill(self) -> None:
        """Vanish like a camera losing power (SIGKILL, no RTSP TEARDOWN)."""
        _end(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _end(self.proc)


@dataclass
class PerlRtspRelay:
    """rtsp-server-perl on loopback with the ffmpeg CLI pushing `clip` in a loop (-re).

    Readers connect to `url` over UDP (the relay does not interleave over TCP).
    """

    clip: Path
    client_port: int = field(default_factory=free_port)
    source_port: int = field(default_factory=free_port)
    rtp_port: int = field(default_factory=lambda: 20000 + (os.getpid() * 16) % 20000)
    mount: str = "/cam"
    server: subprocess.Popen | None = None
    pusher: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.client_port}{self.mount}"

    def start(self, settle: float = 1.0) -> PerlRtspRelay:
        self.server = subprocess.Popen(
            [
                require_binary("rtsp-server-perl"),
                "--clientport", str(self.client_port),
                "--serverport", str(self.source_port),
                "--client_listen_address", "127.0.0.1",
                "--source_listen_address", "127.0.0.1",
                "--rtp_start_port", str(self.rtp_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.server, self.client_port)
        _wait_port(self.server, self.source_port)
        self.pusher = subprocess.Popen(
            [
                require_binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-re",
                "-stream_loop", "-1", "-i", str(self.clip), "-c", "copy",
                "-f", "rtsp", f"rtsp://127.0.0.1:{self.source_port}{self.mount}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(settle)  # the relay only knows the mount once ffmpeg has ANNOUNCEd it
        return self

    def stop(self) -> None:
        _end(self.pusher)
        _end(self.server)


def require_gst_rtsp() -> None:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
    )
    if probe.returncode != 0:
        missing("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) not installed")


@pytest.fixture
def h264_clip(tmp_path: Path) -> Path:
    """A 6 s, 25 fps, 320x240 H.264 .mp4 with a keyframe every second."""
    return make_h264_clip(tmp_path / "clip.mp4", seconds=6.0)


@pytest.fixture
def gst_rtsp(h264_clip: Path) -> Iterator[GstRtspServer]:
    require_gst_rtsp()
    server = GstRtspServer(h264_clip).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gst_rtsp_factory(tmp_path: Path) -> Iterator[Callable[..., GstRtspServer]]:
    """`start(seconds=6.0, port=None)`: a GStreamer RTSP server on its own clip; all
    servers started through it are stopped at the end of the test."""
    require_gst_rtsp()
    servers: list[GstRtspServer] = []

    def start(seconds: float = 6.0, port: int | None = None, **clip_kw) -> GstRtspServer:
        clip = make_h264_clip(tmp_path / f"clip{len(servers)}.mp4", seconds=seconds, **clip_kw)
        server = GstRtspServer(clip, port=port or free_port())
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def perl_rtsp(h264_clip: Path) -> Iterator[PerlRtspRelay]:
    relay = PerlRtspRelay(h264_clip)
    try:
        yield relay.start()
    finally:
        relay.stop()


if __name__ == "__main__":  # manual check: python tests/rtsp.py CLIP
    srv = GstRtspServer(Path(sys.argv[1])).start()
    print(srv.url, flush=True)
    try:
        srv.proc.wait()  # type: ignore[union-attr]
    finally:
        srv.stop()
