"""The HTTP routes and request bodies. Every route reads its collaborators from
`request.app.state` (service, metrics, data_dir, sse settings), so the routers are plain
module-level objects and `create_app` (pipeline/api/app.py) only assembles them.

Owns request validation (pydantic bodies with `extra="forbid"`; errors name the field and
the value) and path-safe thumbnail serving. No business logic: every route calls the
`ServiceAPI`. Auth is applied by `create_app` to the `private` router as a whole.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.app.api.metrics import CONTENT_TYPE, Metrics
from pipeline.app.api.service_api import ServiceAPI
from pipeline.app.api.sse import alert_stream, latest_alert_id
from pipeline.messages import Question

THUMBNAIL_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_QUESTION_CHARS = 1000

public = APIRouter()  # no token: liveness probes must work without secrets
private = APIRouter()


def _service(request: Request) -> ServiceAPI:
    return request.app.state.service


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


Service = Annotated[ServiceAPI, Depends(_service)]
Limit = Annotated[int, Query(ge=1, le=1000)]
MAX_ID = 2**63 - 1  # row ids are 64-bit in SQLite and PostgreSQL
Cursor = Annotated[int | None, Query(ge=0, le=MAX_ID)]
# A moment: epoch seconds (finite: NaN and infinities are refused) or ISO-8601.
Moment = Annotated[float, Field(allow_inf_nan=False)] | datetime | None
MomentQuery = Annotated[float | None, Query(allow_inf_nan=False)]


class CameraIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=4096)
    fps: float | None = Field(default=None, gt=0, le=4)
    backend: Literal["cv", "videoxl2"] | None = None


class CameraPatch(BaseModel):
    """The camera's own settings; keys left out are unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fps: float | None = Field(default=None, gt=0, le=4)
    backend: Literal["cv", "videoxl2"] | None = None
    enabled: bool | None = None


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    camera: str = Field(min_length=1, max_length=64)
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    since: Moment = None  # epoch seconds or ISO-8601
    until: Moment = None
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


def _check_window(since: float | None, until: float | None) -> None:
    if since is not None and until is not None and since > until:
        raise ValueError(f"until: must not be before since; got since={since} until={until}")


@public.get("/livez")
def livez() -> dict[str, bool]:
    """The process answers (the liveness probe): nothing else is checked."""
    return {"ok": True}


@public.get("/readyz")
def readyz(service: Service) -> JSONResponse:
    """Ready to serve: the database (and a configured Redis) reachable. Only ok/not-ok
    per part, so it needs no token; `/health` has the details."""
    parts = service.readiness()
    ok = all(parts.values())
    return JSONResponse({"ok": ok, "parts": parts}, status_code=200 if ok else 503)


@private.get("/health")
def health(service: Service) -> JSONResponse:
    """Every part's state (needs the token when one is configured)."""
    body = service.health()
    return JSONResponse(body, status_code=200 if body.get("ok") else 503)


@private.get("/metrics")
def prometheus(metrics: Annotated[Metrics, Depends(_metrics)]) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)


@private.get("/cameras")
def list_cameras(service: Service) -> list[dict[str, Any]]:
    return service.list_cameras()


@private.post("/cameras", status_code=201)
def add_camera(body: CameraIn, service: Service) -> dict[str, Any]:
    return service.add_camera(body.name, body.url, body.fps, body.backend)


@private.get("/cameras/{name}")
def camera_status(name: str, service: Service) -> dict[str, Any]:
    return service.camera_status(name)


@private.patch("/cameras/{name}")
def update_camera(name: str, body: CameraPatch, service: Service) -> dict[str, Any]:
    return service.update_camera(name, body.fps, body.backend, body.enabled)


@private.delete("/cameras/{name}", status_code=204)
def remove_camera(name: str, service: Service) -> Response:
    service.remove_camera(name)
    return Response(status_code=204)


@private.post("/ask")
def ask(body: AskIn, service: Service,
        metrics: Annotated[Metrics, Depends(_metrics)]) -> dict[str, Any]:
    since, until = _epoch(body.since), _epoch(body.until)
    _check_window(since, until)
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


@private.get("/events")
def events(camera: str, service: Service, since: MomentQuery = None,
           until: MomentQuery = None, limit: Limit = 100) -> list[dict[str, Any]]:
    _check_window(since, until)
    return service.events(camera, since, until, limit)


@private.get("/alerts")
def alerts(service: Service, after_id: Cursor = None,
           camera: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
    return service.alerts(after_id, camera, limit)


@private.get("/alerts/stream", response_class=EventSourceResponse)
async def alerts_stream(
    request: Request, service: Service,
    after_id: Cursor = None, camera: str | None = None,
    max_events: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    timeout_s: Annotated[float | None, Query(gt=0, le=86_400)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
):
    """Alerts as server-sent events; resumes after `after_id` or `Last-Event-ID`, else
    starts with the next alert committed."""
    if after_id is None and last_event_id and last_event_id.isdigit():
        after_id = int(last_event_id)
    if after_id is None:
        after_id = await latest_alert_id(service.alerts, camera)
    state = request.app.state
    async for event in alert_stream(service.alerts, after_id, camera, state.sse_poll_s,
                                    max_events, timeout_s, stop=state.streams_stop):
        yield event


@private.get("/thumbnails/{rel:path}")
def thumbnail(rel: str, request: Request) -> FileResponse:
    try:
        path = safe_thumbnail_path(request.app.state.data_dir, rel)
    except ValueError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    if not path.is_file():
        raise HTTPException(404, detail=f"thumbnail: not found; got {rel!r}")
    return FileResponse(path)
