"""The HTTP routes and request bodies. Every route reads its collaborators from
`request.app.state` (service, metrics, data_dir, sse settings), so the routers are plain
module-level objects and `create_app` (pipeline/api/app.py) only assembles them.

Owns request validation (pydantic bodies with `extra="forbid"`; errors name the field and
the value), the typed responses (pipeline/app/api/schemas.py), the cursors of the
newest-first lists (the next page's `before` is in the `X-Next-Before` header) and
path-safe thumbnail serving. No business logic: every route calls the `ServiceAPI`. Auth
is applied by `create_app` to the `private` router as a whole.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.app.api.errors import ApiError
from pipeline.app.api.metrics import CONTENT_TYPE, Metrics
from pipeline.app.api.schemas import (
    ERROR_RESPONSES,
    JSON_ERROR_RESPONSES,
    AlertOut,
    AnswerOut,
    CameraOut,
    ErrorOut,
    EventOut,
    HealthOut,
    LiveOut,
    ProfileOut,
    ReadyOut,
)
from pipeline.app.api.service_api import ServiceAPI, event_cursor
from pipeline.app.api.sse import alert_stream, latest_alert_id
from pipeline.messages import Question
from pipeline.record.clips import clip_url

THUMBNAIL_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_QUESTION_CHARS = 1000

public = APIRouter(tags=["probes"])  # no token: liveness probes must work without secrets
private = APIRouter(responses=ERROR_RESPONSES)
NEXT_BEFORE = "X-Next-Before"  # the cursor of the next (older) page of a list


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
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
Kinds = Annotated[list[Annotated[str, Field(pattern=KIND_PATTERN)]] | None,
                  Query(alias="kind", max_length=32,
                        description="only these kinds (repeat: ?kind=a&kind=b)")]


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


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int = Field(20, ge=1, le=1000)
    timeout_s: float = Field(60.0, gt=0, le=300)


def _epoch(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def safe_thumbnail_path(data_dir: FilePath, rel: str) -> FilePath:
    """The file under data_dir/thumbnails that `rel` names; ValueError for anything that
    would leave that folder (`..`, absolute paths, symlinks out) or is not an image."""
    root = (FilePath(data_dir) / "thumbnails").resolve()
    if not rel or "\x00" in rel or FilePath(rel).is_absolute() or ".." in FilePath(rel).parts:
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


def _json(model: type[BaseModel], body: Any, status: int) -> JSONResponse:
    """A typed body with a status of its own (readiness and health answer 503 when down)."""
    return JSONResponse(model.model_validate(body).model_dump(mode="json", exclude_unset=True),
                        status_code=status)


@public.get("/livez", response_model=LiveOut)
def livez() -> dict[str, bool]:
    """The process answers (the liveness probe): nothing else is checked."""
    return {"ok": True}


@public.get("/readyz", response_model=ReadyOut,
            responses={503: {"model": ReadyOut, "description": "a part is down"}})
def readyz(service: Service) -> JSONResponse:
    """Ready to serve: the database (and a configured Redis) reachable. Only ok/not-ok
    per part, so it needs no token; `/health` has the details."""
    parts = service.readiness()
    ok = all(parts.values())
    return _json(ReadyOut, {"ok": ok, "parts": parts}, 200 if ok else 503)


@private.get("/health", response_model=HealthOut, tags=["health"],
             responses={503: {"model": HealthOut, "description": "a part is down"}})
def health(service: Service) -> JSONResponse:
    """Every part's state (needs the token when one is configured)."""
    body = service.health()
    return _json(HealthOut, body, 200 if body.get("ok") else 503)


@private.post("/debug/profile", response_model=ProfileOut, tags=["health"])
def profile(body: ProfileIn, service: Service) -> dict[str, Any]:
    """Profile every memory actor's step loop over its next `steps` steps (cProfile in the
    loop's thread; the step's phases timed to the GPU meanwhile, which slows them a
    little): slot -> wall time, chunks, where the loop's time went, the phases and the
    functions by cumulative and own time. Answers once the steps ran or `timeout_s` passed."""
    return {"slots": service.profile_memory(body.steps, body.timeout_s)}


@private.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition"}})
def prometheus(metrics: Annotated[Metrics, Depends(_metrics)]) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)


@private.get("/cameras", response_model=list[CameraOut], tags=["cameras"])
def list_cameras(service: Service) -> list[dict[str, Any]]:
    """Every camera with its state and, while the service runs it, live ingest counters."""
    return service.list_cameras()


@private.post("/cameras", status_code=201, response_model=CameraOut, tags=["cameras"])
def add_camera(body: CameraIn, service: Service) -> dict[str, Any]:
    """Register a camera (the same checks as `xlwatch camera add`)."""
    return service.add_camera(body.name, body.url, body.fps, body.backend)


@private.get("/cameras/{name}", response_model=CameraOut, tags=["cameras"])
def camera_status(name: str, service: Service) -> dict[str, Any]:
    return service.camera_status(name)


@private.patch("/cameras/{name}", response_model=CameraOut, tags=["cameras"])
def update_camera(name: str, body: CameraPatch, service: Service) -> dict[str, Any]:
    """Change the camera's own fps, backend or enabled; a running service restarts it."""
    return service.update_camera(name, body.fps, body.backend, body.enabled)


@private.delete("/cameras/{name}", status_code=204, response_class=Response,
                tags=["cameras"])
def remove_camera(name: str, service: Service) -> Response:
    service.remove_camera(name)
    return Response(status_code=204)


@private.post("/ask", response_model=AnswerOut, tags=["questions"])
def ask(body: AskIn, service: Service, request: Request,
        metrics: Annotated[Metrics, Depends(_metrics)]) -> dict[str, Any]:
    """Ask about one camera; the answer's intervals carry wall times and thumbnails."""
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
    out = dataclasses.asdict(answer)
    for interval in out["intervals"]:
        thumb = interval.get("thumbnail")
        interval["thumbnail_url"] = f"/{thumb}" if thumb else None
        interval["clip_url"] = clip_url(request.app.state.cfg, answer.camera,
                                        interval["start"], interval["end"])
    return out


EventCursor = Annotated[str | None, Query(
    max_length=64, pattern=r"^[0-9eE.+-]{1,40}:[0-9]{1,19}$",
    description="the X-Next-Before header of the previous page")]


@private.get("/events", response_model=list[EventOut], tags=["events"],
             responses={200: {"headers": {NEXT_BEFORE: {
                 "description": "cursor of the next (older) page", "schema": {
                     "type": "string"}}}}})
def events(camera: str, service: Service, response: Response, since: MomentQuery = None,
           until: MomentQuery = None, kind: Kinds = None, before: EventCursor = None,
           limit: Limit = 100) -> list[dict[str, Any]]:
    """A camera's events overlapping [since, until], newest first."""
    _check_window(since, until)
    rows = service.events(camera, since, until, limit, kinds=kind, before=before)
    if len(rows) == limit:
        response.headers[NEXT_BEFORE] = event_cursor(rows[-1])
    return rows


@private.get("/alerts", response_model=list[AlertOut], tags=["alerts"],
             responses={200: {"headers": {NEXT_BEFORE: {
                 "description": "cursor of the next (older) page", "schema": {
                     "type": "integer"}}}}})
def alerts(service: Service, response: Response, after_id: Cursor = None,
           before: Cursor = None, camera: str | None = None, kind: Kinds = None,
           limit: Limit = 100) -> list[dict[str, Any]]:
    """Newest first (`before`: the previous page's last alert_id). With `after_id`: the
    alerts committed after it, oldest first (what followers poll)."""
    if after_id is not None:
        if before is not None or kind:
            field = "before" if before is not None else "kind"
            raise ApiError(400, "invalid_input", f"{field}: pages and filters the "
                           "newest-first list; not with after_id", field)
        return service.alerts(after_id, camera, limit)
    rows = service.recent_alerts(before, camera, kind, limit)
    if len(rows) == limit:
        response.headers[NEXT_BEFORE] = str(rows[-1]["alert_id"])
    return rows


@private.post("/alerts/{alert_id}/ack", response_model=AlertOut, tags=["alerts"])
def acknowledge_alert(alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                      service: Service) -> dict[str, Any]:
    """Mark the alert seen (again: keeps the first time)."""
    return service.acknowledge_alert(alert_id)


@private.get("/alerts/stream", response_class=EventSourceResponse, tags=["alerts"],
             responses={**JSON_ERROR_RESPONSES, 200: {"content": {"text/event-stream": {
                 "schema": {"type": "string", "description": "`event: alert`, `id`: the "
                            "alert_id, `data`: an AlertOut"}}}}})
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


@private.get("/thumbnails/{rel:path}", response_class=FileResponse, tags=["thumbnails"],
             responses={200: {"content": {"image/jpeg": {}, "image/png": {}},
                              "description": "the image"},
                        400: {"model": ErrorOut}, 404: {"model": ErrorOut}})
def thumbnail(rel: str, request: Request) -> FileResponse:
    """An event's, alert's or chunk's image (paths from the records' thumbnail_url)."""
    try:
        path = safe_thumbnail_path(request.app.state.data_dir, rel)
    except ValueError as exc:
        raise ApiError(400, "invalid_path", str(exc), "path") from exc
    if not path.is_file():
        raise ApiError(404, "thumbnail_not_found", f"thumbnail: not found; got {rel!r}",
                       "path")
    return FileResponse(path)


ClipMoment = Annotated[str, Query(min_length=1, max_length=64,
                                  description="epoch seconds or ISO-8601 (naive: UTC)")]


@private.get("/clips/{camera}", response_class=FileResponse, tags=["clips"],
             responses={200: {"content": {"video/mp4": {}, "video/quicktime": {}},
                              "description": "the recording of [start, end), cut at "
                                             "keyframes; X-Clip-Start and X-Clip-End: "
                                             "epoch seconds of its first and last frame"},
                        **JSON_ERROR_RESPONSES})
def clip(camera: str, start: ClipMoment, end: ClipMoment, service: Service,
         request: Request) -> FileResponse:
    """A playable MP4 of the camera's recording from the keyframe at or before `start`
    to `end` (remuxed, never re-encoded); answers' intervals and alerts link here."""
    from starlette.background import BackgroundTask

    from pipeline.record.clips import ClipNotFound, check_interval, parse_moment

    t0, t1 = parse_moment("start", start), parse_moment("end", end)
    check_interval(t0, t1)  # InputErrors: 400 naming the field and the value
    try:
        info = service.clip(camera, t0, t1, request.app.state.data_dir / "clips")
    except ClipNotFound as exc:
        raise ApiError(404, "clip_not_found", str(exc), "start") from None
    headers = {"X-Clip-Start": f"{info.wall_start:.3f}", "X-Clip-End": f"{info.wall_end:.3f}"}
    return FileResponse(info.path, media_type=info.media_type, headers=headers,
                        filename=info.path.name,
                        background=BackgroundTask(info.path.unlink, missing_ok=True))


@private.get("/cameras/{name}/latest.jpg", response_class=FileResponse, tags=["cameras"],
             responses={200: {"content": {"image/jpeg": {}}, "description": "the image"},
                        **JSON_ERROR_RESPONSES})
def latest_jpg(name: str, service: Service, request: Request) -> FileResponse:
    """The camera's newest snapshot (the keyframe of its newest chunk)."""
    snapshot = service.camera_status(name).get("snapshot_url")
    path = None if not snapshot else FilePath(request.app.state.data_dir) / snapshot.lstrip("/")
    if path is None or not path.is_file():
        raise ApiError(404, "snapshot_not_found", f"name: no snapshot yet; got {name!r}",
                       "name")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
