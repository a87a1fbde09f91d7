"""Test helpers: a camera recorded through the ingest path the service runs (the ingest
actor's own class, without Ray: no memory or alert peers), and PyAV readers."""

from __future__ import annotations

from pathlib import Path

import av

from pipeline.config import config_from_dict
from pipeline.wiring import cipher, database
from storage import repo
from tests.e2e.clips import cut_clip

SECONDS = 30  # of vtest.avi, re-encoded as MPEG-4 at 10 fps: a keyframe every 1.2 s
KEYFRAME_S = 1.2  # the encoder's default GOP of 12 frames


def recording_cfg(tmp_path: Path, **record):
    return config_from_dict({
        "data_dir": str(tmp_path / "data"), "allowed_roots": [str(tmp_path)],
        "camera_defaults": {"record": {"mode": "continuous", "segment_s": 4, **record}}})


def footage(tmp_path: Path, vtest: Path, seconds: float = SECONDS) -> Path:
    return cut_clip(vtest, tmp_path / "footage.mp4", seconds)


def ingest_camera(cfg, camera: str, url: Path) -> dict:
    """Register `camera` and run it to the end of its file as `xlwatch serve` runs it
    (IngestActor: CameraIngest + recorder + CameraAnalysis); its final status."""
    from actors.ingest_actor import IngestActor

    with database(cfg).session() as s:
        if repo.get_camera(s, camera) is None:
            repo.add_camera(s, camera, str(url), cipher(cfg))
    actor = IngestActor(camera, cfg, None, None)
    assert actor.wait_idle(timeout=300), "the file should be read to its end"
    status = actor.status()
    actor.stop()
    return status


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def frame_at(path: Path, t: float):
    """The decoded frame of `path` shown at `t` seconds (BGR array)."""
    with av.open(str(path)) as c:
        best = None
        for f in c.decode(video=0):
            if f.time is not None and f.time > t + 1e-3:
                break
            best = f
        return best.to_ndarray(format="bgr24")
