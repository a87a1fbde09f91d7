"""Wiring: the config tree and the camera rows -> what each part is handed.

The one source of truth for a camera's settings is `camera_settings`: the config's
(camera_defaults merged with `cameras.<name>`), then the row's own overrides (fps,
backend) over them; `enabled` lives in the row. Ingest, placement and questions all call
it. Also: the database and cipher of a process, the ingest options of a camera, which
cameras the service should run. It runs nothing: actors and `analyze` call these helpers
and then own the objects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ingest.options import IngestOptions
from storage import repo
from storage.db import Database, open_database

FILE_STATES_DONE = ("finished",)


@dataclass(frozen=True)
class CameraPlan:
    """What the service should run for one database camera."""

    name: str
    backend: str  # "cv" | "videoxl2"
    is_file: bool
    run_ingest: bool  # False for a file that was read to its end already
    needs_gpu: bool  # videoxl2 on a node with GPUs
    fps: float = 1.0

    @property
    def settings_key(self) -> tuple:
        """What, when changed, means the camera's ingest and memory start afresh."""
        return (self.backend, self.fps)

    @property
    def needs_memory_frames(self) -> bool:
        return self.backend == "videoxl2"


def db_url(cfg: Any) -> str:
    return cfg.database_url


@functools.lru_cache(maxsize=8)
def _open(url: str) -> Database:
    return open_database(url)


def database(cfg: Any) -> Database:
    """One Database (engine + sessions) per URL per process, migrations applied."""
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    return _open(db_url(cfg))


def cipher(cfg: Any) -> Any:
    from storage.secrets import load_cipher

    key = cfg.secret_key.get_secret_value() if cfg.secret_key is not None else None
    return load_cipher(Path(cfg.data_dir), key)


def camera_settings(cfg: Any, row: Any) -> Any:
    """A camera's effective CameraConfig: the config's settings for `row.name`, with the
    row's fps and backend (set by `camera add|update`, `POST|PATCH /cameras`) over them."""
    update: dict[str, Any] = {"fps": float(row.fps)} if row.fps else {}
    backend = (row.options or {}).get("backend")
    if backend:
        update["backend"] = backend
    return cfg.camera(row.name).model_copy(update=update)


def settings_of(cfg: Any, db: Database, camera: str) -> Any:
    """`camera_settings` of the stored camera `camera` (the config's alone if no row)."""
    with db.session() as s:
        row = repo.get_camera(s, camera)
    return camera_settings(cfg, row) if row is not None else cfg.camera(camera)


def backend_of(cfg: Any, settings: Any) -> str:
    """The answer backend of a camera with these settings."""
    return settings.backend or cfg.model.backend


def is_file_url(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def ingest_options(cam_cfg: Any, fps: float | None = None,
                   wall_origin: float | None = None) -> IngestOptions:
    kf = {"auto": None, "on": True, "off": False}[cam_cfg.keyframes_only]
    return IngestOptions(
        fps=fps or cam_cfg.fps, analysis_width=cam_cfg.analysis_width,
        transport=cam_cfg.transport, open_timeout=cam_cfg.connect_timeout_s,
        read_timeout=cam_cfg.read_timeout_s, keyframe_only=kf, loop=cam_cfg.loop,
        realtime=cam_cfg.realtime, max_in_flight=cam_cfg.max_inflight_chunks,
        backoff_initial=cam_cfg.backoff_initial_s, backoff_max=cam_cfg.backoff_max_s,
        wall_origin=wall_origin,
    )


def open_camera(cfg: Any, camera: str) -> tuple[Database, Any, str]:
    """(database, merged camera config, decrypted URL) for an actor about to run a camera."""
    db = database(cfg)
    with db.session() as s:
        row = repo.get_camera(s, camera)
        if row is None:
            raise KeyError(f"camera: unknown camera; got {camera!r}")
        url = repo.camera_url(s, camera, cipher(cfg))
        settings = camera_settings(cfg, row)
    return db, settings, url


def camera_ingest(cfg: Any, camera: str, cam_cfg: Any, url: str,
                  wall_origin: float | None = None) -> Any:
    """A CameraIngest with no callback: the ingest actor drains `.queue` itself. Its queue
    waits for the consumer on a file read once (dropping would lose footage nobody can ask
    about again) and drops the oldest chunk on live cameras and looped files. With the
    camera's stored `wall_origin`, stream time continues across restarts. With recording
    on (`record.mode`), its recorder rides on the same demux (`camera_recorder`)."""
    from pipeline.ingest.supervisor import CameraIngest

    return CameraIngest(camera, url, ingest_options(cam_cfg, wall_origin=wall_origin),
                        recorder=camera_recorder(cfg, camera, cam_cfg, url))


def camera_recorder(cfg: Any, camera: str, cam_cfg: Any, url: str) -> Any:
    """The camera's CameraRecorder, or None when it does not record. A file read once
    waits for the disk (its footage cannot be read again); live cameras drop and count."""
    if not cam_cfg.record.enabled:
        return None
    from pipeline.record.recorder import CameraRecorder

    block = is_file_url(url) and not (cam_cfg.loop or cam_cfg.realtime)
    return CameraRecorder(camera, Path(cfg.data_dir), cam_cfg.record, block=block)


def record_failure(cfg: Any, camera: str, error: str) -> None:
    """Best effort: the database may itself be what failed."""
    try:
        with database(cfg).session() as s:
            repo.set_camera_status(s, camera, "failed", error)
    except Exception:  # noqa: BLE001 - the caller re-raises the original error
        pass


def desired_cameras(cfg: Any, db: Database, has_gpu: bool = False
                    ) -> tuple[dict[str, CameraPlan], set[str]]:
    """(plans for the enabled cameras, names of every camera row): the database is the
    source of truth; a disabled camera is released but keeps its memory on disk."""
    plans: dict[str, CameraPlan] = {}
    with db.session() as s:
        rows = repo.list_cameras(s)
    for row in rows:
        if row.enabled:
            plans[row.name] = _plan(cfg, row, has_gpu)
    return plans, {row.name for row in rows}


def _plan(cfg: Any, row: Any, has_gpu: bool) -> CameraPlan:
    settings = camera_settings(cfg, row)
    backend = backend_of(cfg, settings)
    is_file = is_file_url(row.url_masked)
    # A failed camera waits for the operator (remove and add it again); a file read to
    # its end is not read again unless it loops.
    done = row.status == "failed" or (
        is_file and row.status in FILE_STATES_DONE and not settings.loop)
    needs_gpu = backend == "videoxl2" and has_gpu and cfg.model.device != "cpu"
    return CameraPlan(row.name, backend, is_file, not done, needs_gpu, settings.fps)
