"""The HTTP API's response models: what every route returns, as typed OpenAPI schemas.

Owns the shapes only (pydantic models that FastAPI validates responses against and
publishes in /openapi.json), plus the one error shape every refusal uses. It does not
build them: the service (pipeline/app/api/service_api.py) returns plain dicts with these
keys, so the CLI's database fallback and the API print the same records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Open(BaseModel):
    """A record whose parts come from live actors: known keys typed, others kept."""

    model_config = ConfigDict(extra="allow")


class FieldError(_Out):
    loc: list[str | int] = Field(description="where the bad value is, e.g. ['body', 'fps']")
    msg: str
    type: str | None = None
    input: Any = Field(default=None, description="the refused value, masked and cut short")


class ErrorBody(_Out):
    code: str = Field(description="machine-readable, e.g. camera_not_found, invalid_input",
                      examples=["camera_not_found"])
    message: str = Field(description="for people; credentials are masked")
    field: str | None = Field(default=None, description="the field at fault, when one is")
    details: list[FieldError] | None = Field(
        default=None, description="every refused field (request validation only)")


class ErrorOut(_Out):
    error: ErrorBody


class LiveOut(_Out):
    ok: bool


class ReadyOut(_Out):
    ok: bool
    parts: dict[str, bool] = Field(description="database, and redis when configured")


class HealthOut(_Open):
    ok: bool
    database: dict[str, Any] = Field(description="ok and the masked URL")
    query_backend: bool = Field(description="questions can be answered")
    redis: dict[str, Any] | None = None
    service: dict[str, Any] | None = Field(
        default=None, description="the running service's actors: cameras, memory, alerts")


class ProfileOut(_Out):
    slots: dict[str, dict[str, Any]] = Field(
        description="memory slot -> its report: steps, wall_s, chunks, loop_s (stepping, "
                    "calls, scores_out), phases_s, by_cumulative, by_own_time; or error")


class IngestOut(_Open):
    """The camera's live ingest counters (present while the service runs it)."""

    state: str | None = None
    last_error: str | None = None
    reconnects: int | None = None
    frames_decoded: int | None = None
    frames_sampled: int | None = None
    frames_dropped: int | None = None
    chunks_emitted: int | None = None
    updated_at: float | None = None
    error: str | None = Field(default=None, description="the ingest actor could not answer")


class CameraOut(_Out):
    name: str
    url: str = Field(description="credentials masked")
    fps: float
    enabled: bool
    backend: str | None = Field(description="the camera's own backend; None: the config's")
    status: str = Field(description="new, connecting, live, reconnecting, failed, finished, "
                                    "stopped, unplaced (no memory slot has room: it waits)")
    last_error: str | None
    created_at: str | None
    updated_at: str | None
    updated_at_epoch: float | None = Field(default=None,
                                           description="when the status last changed")
    timezone: str = Field(default="UTC", description="the camera's time zone (the config's)")
    snapshot_url: str | None = Field(default=None,
                                     description="the newest chunk's keyframe, if any")
    state: str | None = None
    ingest: IngestOut | None = None


class EventOut(_Out):
    event_id: int
    camera: str
    kind: str
    t_start: float = Field(description="seconds since the camera's stream origin")
    t_end: float | None
    wall_start: float = Field(description="epoch seconds")
    wall_end: float | None
    start: str | None = Field(description="ISO-8601")
    end: str | None
    track_id: int | None
    confidence: float | None
    bbox: list[float] | None
    count: int | None
    thumbnail: str | None
    thumbnail_url: str | None
    chunk_seq: int | None
    details: dict[str, Any]


class AlertOut(_Out):
    alert_id: int
    camera: str
    rule: str
    kind: str
    message: str
    wall_time: float = Field(description="epoch seconds")
    time: str | None = Field(description="ISO-8601")
    t: float | None
    score: float | None
    thumbnail: str | None
    thumbnail_url: str | None
    dedup_key: str
    details: dict[str, Any]
    delivered_at: float | None
    delivery_attempts: int
    acknowledged_at: float | None = None
    clip_url: str | None = Field(default=None, description="the recording around the "
                                 "moment it fired (None: the camera does not record)")


class IntervalOut(_Out):
    start: float = Field(description="epoch seconds")
    end: float
    t_start: float
    t_end: float
    label: str
    confidence: float
    thumbnail: str | None = None
    thumbnail_url: str | None = None
    clip_url: str | None = Field(default=None, description="the recording of the interval "
                                 "(None: the camera does not record)")


class AnswerOut(_Out):
    camera: str
    question: str
    text: str
    backend: str
    intervals: list[IntervalOut]
    latency_ms: float
    evidence_event_ids: list[int]
    chunks_used: list[tuple[int, str]]
    query_id: int | None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text} for code, text in (
        (400, "refused input (names the field)"), (401, "no valid token or session"),
        (404, "no such camera, alert or file"), (409, "the name is taken"),
        (422, "request validation failed (every field named)"),
        (503, "the database, Redis or the query backend is down"))}

# For routes whose own media type is not JSON (the SSE stream): their refusals still are.
JSON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {**v, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for code, v in ERROR_RESPONSES.items()}
