"""The FastAPI application: cameras, ask, events, alerts (+ SSE stream), health, metrics,
thumbnails.

Owns routes, request validation (pydantic bodies with `extra="forbid"`; errors name the
field and the value), the mapping of service errors to HTTP codes, bearer-token auth and
path-safe thumbnail serving. It holds no state of its own and no business logic: every
route calls the `ServiceAPI` it was built with. It does not bind sockets: `serve` (the
service helper) runs it with uvicorn after `require_token_for_bind`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.api.auth import require_token_for_bind, token_checker
from pipeline.api.metrics import CONTENT_TYPE, Metrics
from pipeline.api.service_api import Conflict, NotFound, ServiceAPI, ServiceUnavailable
from pipeline.api.sse import alert_stream, latest_alert_id
from pipeline.messages import Question

log = logging.getLogger(__name__)

THUMBNAIL_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_QUESTION_CHARS = 1000


class CameraIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=4096)
    fps: float | None = Field(default=None, gt=0, le=4)
    backend: Literal["cv", "videoxl2"] | None = None


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    camera: str = Field(min_length=1, max_length=64)
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    since: float | datetime | None = None  # epoch seconds or ISO-8601
    until: float | datetime | None = None
    backend: Literal["cv", "videoxl2"] | None = None

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError(f"question must not be empty; got {v!r}")
        return v.strip()


def _epoch(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def safe_thumbnail_path(data_dir: Path, rel: str) -> Path:
    """The file under data_dir/thumbnails that `rel` names; ValueError for anything that
    would leave that folder (`..`, absolute paths, symlinks out) or is not an image."""
    root = (Path(data_dir) / "thumbnails").resolve()
    if not rel or "\x00" in rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ValueError(f"thumbnail: path must stay inside the thumbnails folder; got {rel!r}")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"thumbnail: path must stay inside the thumbnails folder; got {rel!r}")
    if path.suffix.lower() not in THUMBNAIL_SUFFIXES:
        raise ValueError(f"thumbnail: only .jpg/.jpeg/.png are served; got {rel!r}")
    return path


def _token(cfg: Any) -> str | None:
    token = getattr(getattr(cfg, "api", None), "token", None)
    if token is None:
        return None
    return token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)


def _install_error_handlers(app: FastAPI) -> None:
    codes: list[tuple[type[Exception], int]] = [
        (NotFound, 404), (Conflict, 409), (ValueError, 400), (ServiceUnavailable, 503)]
    try:  # storage's outage type, when storage is present
        from storage.db import DatabaseUnavailable
        codes.append((DatabaseUnavailable, 503))
    except ImportError:  # pragma: no cover - storage is part of every install
        pass
    for exc_type, code in codes:
        def handler(_request: Request, exc: Exception, code: int = code) -> JSONResponse:
            if code >= 500:
                log.warning("service unavailable: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)


def create_app(service: ServiceAPI, cfg: Any, metrics: Metrics | None = None,
               sse_poll_s: float = 0.5) -> FastAPI:
    """The API over `service`. `cfg` is the XLWatchConfig (reads `api.host`, `api.token`,
    `data_dir`); a non-loopback `api.host` without a token is refused here as well."""
    token = _token(cfg)
    host = getattr(getattr(cfg, "api", None), "host", "127.0.0.1")
    require_token_for_bind(host, token)
    data_dir = Path(getattr(cfg, "data_dir", "."))
    metrics = metrics or Metrics()
    app = FastAPI(title="XL-Watch", version="0.1.0")
    app.state.service, app.state.metrics = service, metrics
    _install_error_handlers(app)
    auth = [Depends(token_checker(token))]

    @app.get("/health")
    def health() -> JSONResponse:
        body = service.health()
        return JSONResponse(body, status_code=200 if body.get("ok") else 503)

    @app.get("/metrics", dependencies=auth)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/cameras", dependencies=auth)
    def list_cameras() -> list[dict[str, Any]]:
        return service.list_cameras()

    @app.post("/cameras", status_code=201, dependencies=auth)
    def add_camera(body: CameraIn) -> dict[str, Any]:
        return service.add_camera(body.name, body.url, body.fps, body.backend)

    @app.get("/cameras/{name}", dependencies=auth)
    def camera_status(name: str) -> dict[str, Any]:
        return service.camera_status(name)

    @app.delete("/cameras/{name}", status_code=204, dependencies=auth)
    def remove_camera(name: str) -> Response:
        service.remove_camera(name)
        return Response(status_code=204)

    @app.post("/ask", dependencies=auth)
    def ask(body: AskIn) -> dict[str, Any]:
        since, until = _epoch(body.since), _epoch(body.until)
        if since is not None and until is not None and since > until:
            raise ValueError(f"until: must not be before since; got since={since} "
                             f"until={until}")
        q = Question(camera=body.camera, text=body.question, since=since, until=until,
                     backend=body.backend)
        start = time.perf_counter()
        try:
            answer = service.ask(q)
        except Exception:
            metrics.observe_question(body.backend or "default", 0.0, ok=False)
            raise
        metrics.observe_question(answer.backend, time.perf_counter() - start, ok=True)
        return dataclasses.asdict(answer)

    @app.get("/events", dependencies=auth)
    def events(camera: str, since: float | None = None, until: float | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        if since is not None and until is not None and since > until:
            raise ValueError(f"until: must not be before since; got since={since} "
                             f"until={until}")
        return service.events(camera, since, until, limit)

    @app.get("/alerts", dependencies=auth)
    def alerts(after_id: Annotated[int | None, Query(ge=0)] = None, camera: str | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return service.alerts(after_id, camera, limit)

    @app.get("/alerts/stream", response_class=EventSourceResponse, dependencies=auth)
    async def alerts_stream(
        after_id: Annotated[int | None, Query(ge=0)] = None, camera: str | None = None,
        max_events: Annotated[int | None, Query(ge=1)] = None,
        timeout_s: Annotated[float | None, Query(gt=0)] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ):
        if after_id is None and last_event_id and last_event_id.isdigit():
            after_id = int(last_event_id)
        if after_id is None:  # only alerts committed from now on
            after_id = await latest_alert_id(service.alerts, camera)
        async for event in alert_stream(service.alerts, after_id, camera, sse_poll_s,
                                        max_events, timeout_s):
            yield event

    @app.get("/thumbnails/{rel:path}", dependencies=auth)
    def thumbnail(rel: str) -> FileResponse:
        try:
            path = safe_thumbnail_path(data_dir, rel)
        except ValueError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        if not path.is_file():
            raise HTTPException(404, detail=f"thumbnail: not found; got {rel!r}")
        return FileResponse(path)

    return app
