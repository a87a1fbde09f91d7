"""What the HTTP API needs from the service (`ServiceAPI`), the errors it maps to HTTP
codes, and `DatabaseServiceAPI`, an implementation over the database alone.

`DatabaseServiceAPI` implements everything except answering questions: `ask` raises
`ServiceUnavailable` until a query backend is attached with `attach_query(fn)`. The
service (pipeline/service.py) composes or subclasses it and adds live camera status and
questions. This module does not start anything: no actors, no threads.
Records are plain JSON-able dicts (their shapes: pipeline/app/api/schemas.py); wall times
are epoch seconds plus an ISO-8601 string. Lists for people are newest first with a cursor
(`before`); the alert follower's list (`alerts(after_id)`) is oldest first.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pipeline.alerts.relay import alert_payload, iso
from pipeline.evidence import thumbnail_relpath
from pipeline.messages import Answer, Question
from pipeline.record.clips import alert_clip_url
from pipeline.validation import (
    InputError,
    check_readable_video,
    is_file_source,
    validate_camera_name,
    validate_camera_url,
    validate_fps,
)
from storage import repo
from storage.db import Database
from storage.records import AlertRecord, CameraRecord, Conflict, EventRecord, NotFound
from storage.secrets import load_cipher

PROBE_TIMEOUT_S = 2.0  # a readiness check that has not answered by then counts as down
# The probes' own threads: a check hung on a dead host never blocks a request thread.
_PROBES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def _within(check: Callable[[], bool], timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    try:
        return bool(_PROBES.submit(check).result(timeout=timeout_s))
    except FutureTimeout:
        return False

__all__ = ["Conflict", "DatabaseServiceAPI", "NotFound", "ServiceAPI", "ServiceUnavailable",
           "event_cursor", "parse_event_cursor"]


class ServiceUnavailable(RuntimeError):
    """A part the request needs is down or not attached (database, query backend)."""


@runtime_checkable
class ServiceAPI(Protocol):
    def list_cameras(self) -> list[dict[str, Any]]: ...

    def add_camera(self, name: str, url: str, fps: float | None = None,
                   backend: str | None = None) -> dict[str, Any]: ...

    def update_camera(self, name: str, fps: float | None = None, backend: str | None = None,
                      enabled: bool | None = None) -> dict[str, Any]: ...

    def remove_camera(self, name: str) -> None: ...

    def camera_status(self, name: str) -> dict[str, Any]: ...

    def ask(self, question: Question) -> Answer: ...

    def events(self, camera: str, since: float | None = None, until: float | None = None,
               limit: int = 100, kinds: list[str] | None = None,
               before: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `before` is the `event_cursor` of the previous page's last one."""
        ...

    def alerts(self, after_id: int | None = None, camera: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
        """Ascending by id. after_id=None: the newest `limit` alerts, oldest first."""
        ...

    def recent_alerts(self, before: int | None = None, camera: str | None = None,
                      kinds: list[str] | None = None, limit: int = 100
                      ) -> list[dict[str, Any]]:
        """Newest first; `before` is the previous page's last alert_id."""
        ...

    def alert(self, alert_id: int) -> dict[str, Any]: ...

    def acknowledge_alert(self, alert_id: int) -> dict[str, Any]: ...

    def clip(self, camera: str, start: float, end: float, out_dir: Path) -> Any:
        """The camera's recording of [start, end) remuxed into a file under `out_dir`
        (a `pipeline.record.clips.ClipInfo`); NotFound for an unknown camera."""
        ...

    def readiness(self) -> dict[str, bool]: ...

    def health(self) -> dict[str, Any]:
        """Must include "ok": bool."""
        ...

    def profile_memory(self, steps: int, timeout_s: float) -> dict[str, Any]:
        """Each memory actor's step loop profiled over its next `steps` steps: slot ->
        report (pipeline.memory.profile); ServiceUnavailable where none runs."""
        ...


def _thumbnail_url(thumbnail: str | None) -> str | None:
    """Thumbnails are stored relative to the data dir as thumbnails/<camera>/<file>."""
    if not thumbnail or not thumbnail.startswith("thumbnails/"):
        return None
    return "/" + thumbnail


def camera_dict(rec: CameraRecord, timezone: str = "UTC",
                snapshot_seq: int | None = None) -> dict[str, Any]:
    """`snapshot_seq`: the newest chunk, whose keyframe is the camera's latest snapshot."""
    snapshot = (None if snapshot_seq is None else
                _thumbnail_url(thumbnail_relpath(rec.name, f"chunk-{snapshot_seq:08d}")))
    return {"name": rec.name, "url": rec.url_masked, "fps": rec.fps, "enabled": rec.enabled,
            "backend": (rec.options or {}).get("backend"), "status": rec.status,
            "last_error": rec.last_error, "created_at": iso(rec.created_at),
            "updated_at": iso(rec.updated_at), "updated_at_epoch": rec.updated_at,
            "timezone": timezone, "snapshot_url": snapshot}


def event_cursor(event: dict[str, Any]) -> str:
    """The cursor after `event` (an `event_dict`): its start and id, opaque to clients."""
    return f"{event['wall_start']!r}:{event['event_id']}"


def parse_event_cursor(cursor: str) -> tuple[float, int]:
    wall, _, event_id = cursor.partition(":")
    try:
        point = (float(wall), int(event_id))
    except ValueError:
        point = None
    if point is None or not math.isfinite(point[0]) or point[1] < 0:
        raise InputError("before", cursor, "not an events cursor (take it from the "
                         "X-Next-Before header or the last event's cursor)")
    return point


def event_dict(rec: EventRecord) -> dict[str, Any]:
    return {"event_id": rec.id, "camera": rec.camera, "kind": rec.kind,
            "t_start": rec.t_start, "t_end": rec.t_end, "wall_start": rec.wall_start,
            "wall_end": rec.wall_end, "start": iso(rec.wall_start), "end": iso(rec.wall_end),
            "track_id": rec.track_id, "confidence": rec.confidence, "bbox": rec.bbox,
            "count": rec.count, "thumbnail": rec.thumbnail,
            "thumbnail_url": _thumbnail_url(rec.thumbnail), "chunk_seq": rec.chunk_seq,
            "details": dict(rec.details or {})}


def alert_dict(rec: AlertRecord, cfg: Any = None) -> dict[str, Any]:
    """`cfg`: the config, for the alert's `clip_url` (None where the camera records not)."""
    clip = None if cfg is None else alert_clip_url(cfg, rec)
    return {**alert_payload(rec, clip), "thumbnail_url": _thumbnail_url(rec.thumbnail),
            "delivery_attempts": rec.delivery_attempts,
            "acknowledged_at": rec.acknowledged_at}


class DatabaseServiceAPI:
    """`ServiceAPI` over the database: everything but live ingest status and questions.

    `ask` needs a query backend: `attach_query(fn)` with `fn(Question) -> Answer`."""

    def __init__(self, db: Database, cfg: Any) -> None:
        self.db, self.cfg = db, cfg
        self._cipher = load_cipher(Path(cfg.data_dir), cfg.secret)
        self._query: Callable[[Question], Answer] | None = None
        self._probe_bus: Any = None  # the Redis client of the readiness probe, made on use

    def attach_query(self, fn: Callable[[Question], Answer] | None) -> None:
        self._query = fn

    def _camera_dict(self, rec: CameraRecord, snapshot_seq: int | None = None
                     ) -> dict[str, Any]:
        return camera_dict(rec, self.cfg.camera(rec.name).timezone, snapshot_seq)

    def list_cameras(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            seqs = repo.latest_chunk_seqs(s)
            return [self._camera_dict(r, seqs.get(r.name)) for r in repo.list_cameras(s)]

    def add_camera(self, name: str, url: str, fps: float | None = None,
                   backend: str | None = None) -> dict[str, Any]:
        # The same edge checks as `xlwatch camera add` (pipeline/validation.py).
        validate_camera_name(name)
        url = validate_camera_url(url, self.cfg.allowed_roots)
        if is_file_source(url):
            check_readable_video(url)
        fps = validate_fps(fps if fps is not None else self.cfg.camera(name).fps)
        options = {"backend": backend} if backend else {}
        with self.db.session() as s:
            return self._camera_dict(repo.add_camera(s, name, url, self._cipher, fps=fps,
                                                     options=options))

    def update_camera(self, name: str, fps: float | None = None, backend: str | None = None,
                      enabled: bool | None = None) -> dict[str, Any]:
        """Change a camera's own settings (the row's overrides over the config)."""
        validate_camera_name(name)
        if fps is not None:
            fps = validate_fps(fps)
        with self.db.session() as s:
            row = repo.get_camera(s, name)
            if row is None:
                raise NotFound("camera", name, "no such camera")
            options = None
            if backend is not None:
                options = {**(row.options or {}), "backend": backend}
            return self._camera_dict(repo.update_camera(s, name, fps=fps, options=options,
                                                        enabled=enabled))

    def remove_camera(self, name: str) -> None:
        with self.db.session() as s:
            repo.remove_camera(s, name)

    def camera_status(self, name: str) -> dict[str, Any]:
        with self.db.session() as s:
            rec = repo.get_camera(s, name)
            seq = repo.latest_chunk_seqs(s).get(name) if rec is not None else None
        if rec is None:
            raise NotFound("camera", name, "no such camera")
        return {**self._camera_dict(rec, seq), "state": rec.status}

    def ask(self, question: Question) -> Answer:
        if self._query is None:
            raise ServiceUnavailable("ask: no query backend is attached (is the service "
                                     "running?); events and alerts are still available")
        self.camera_status(question.camera)  # NotFound before any work
        return self._query(question)

    def events(self, camera: str, since: float | None = None, until: float | None = None,
               limit: int = 100, kinds: list[str] | None = None,
               before: str | None = None) -> list[dict[str, Any]]:
        point = None if before is None else parse_event_cursor(before)
        with self.db.session() as s:
            return [event_dict(r) for r in repo.list_events_newest(
                s, camera, since, until, kinds, before=point, limit=limit)]

    def alerts(self, after_id: int | None = None, camera: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
        with self.db.session() as s:
            if after_id is None:
                after_id = repo.newest_alert_cursor(s, camera, limit)
            return [alert_dict(r, self.cfg)
                    for r in repo.list_alerts(s, after_id, camera, limit)]

    def recent_alerts(self, before: int | None = None, camera: str | None = None,
                      kinds: list[str] | None = None, limit: int = 100
                      ) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [alert_dict(r, self.cfg) for r in repo.list_alerts_newest(
                s, before=before, camera=camera, kinds=kinds, limit=limit)]

    def alert(self, alert_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            return alert_dict(repo.get_alert(s, alert_id), self.cfg)

    def acknowledge_alert(self, alert_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            return alert_dict(repo.acknowledge_alert(s, alert_id), self.cfg)

    def clip(self, camera: str, start: float, end: float, out_dir: Path) -> Any:
        from pipeline.record.clips import clip_suffix, write_clip
        from pipeline.record.layout import camera_dir

        self.camera_status(camera)  # NotFound before any work
        folder = camera_dir(Path(self.cfg.data_dir), camera)
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / f"{camera}-{uuid.uuid4().hex[:12]}{clip_suffix(folder, start, end)}"
        return write_clip(folder, start, end, out)

    def alert_counts(self) -> list[dict[str, Any]]:
        """Alerts committed and delivered per camera and rule (for /metrics)."""
        with self.db.session() as s:
            return repo.alert_counts(s)

    def chunk_counts(self) -> dict[str, int]:
        """Chunks prefilled into memory per camera (rows of the chunks table)."""
        with self.db.session() as s:
            return repo.chunk_counts(s)

    def readiness(self) -> dict[str, bool]:
        """ok/not-ok of what requests need: the database, and Redis when configured; each
        check has PROBE_TIMEOUT_S to answer (a probe must answer before its own timeout)."""
        parts = {"database": _within(self.db.ping)}
        if getattr(self.cfg, "redis_url", None):
            parts["redis"] = _within(self._redis_up)
        return parts

    def _redis_up(self) -> bool:
        """Ping Redis over one client kept for the probes (not a new pool per request)."""
        from storage.alert_bus import AlertBusUnavailable, RedisAlertBus

        if self._probe_bus is None:
            self._probe_bus = RedisAlertBus(self.cfg.redis_url, self.cfg.alerts.stream,
                                            connect_timeout_s=1.0)
        try:
            return self._probe_bus.ping()
        except AlertBusUnavailable:
            return False

    def profile_memory(self, steps: int, timeout_s: float) -> dict[str, Any]:
        raise ServiceUnavailable("profile: no memory actors run here (`xlwatch serve` "
                                 "runs them)")

    def health(self) -> dict[str, Any]:
        parts = self.readiness()
        out: dict[str, Any] = {"ok": all(parts.values()),
                               "database": {"ok": parts["database"], "url": self.db.url_masked},
                               "query_backend": self._query is not None}
        if "redis" in parts:
            out["redis"] = {"ok": parts["redis"]}
        return out

