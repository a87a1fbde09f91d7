"""Frozen records returned by storage/repo.py, and the errors it raises.

Rows leave the storage layer as these plain dataclasses, never as ORM objects, so they can
cross threads, processes and Ray actors without a session. Inputs that carry many fields
(`NewEvent`, `NewAlert`) are records too. Camera URLs appear here only masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar


class RecordError(ValueError):
    """A repository refusal that names the field and the value."""

    def __init__(self, field_name: str, value: object, reason: str) -> None:
        self.field = field_name
        self.value = value
        super().__init__(f"{field_name}: {reason}; got {value!r}")


class NotFound(RecordError, LookupError):
    """The named camera, rule or row does not exist."""


class Conflict(RecordError):
    """A unique value (camera name, rule name) is already taken."""


@dataclass(frozen=True)
class CameraRecord:
    id: int
    name: str
    url_masked: str
    fps: float
    options: dict[str, Any]
    enabled: bool
    status: str
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ChunkRecord:
    id: int
    camera: str
    seq: int
    t_start: float
    t_end: float
    wall_start: float
    wall_end: float
    n_frames: int
    important: bool
    fine_tier: str | None
    coarse_tier: str | None
    created_at: float


@dataclass(frozen=True)
class NewEvent:
    """An event to insert; `camera` is the camera name."""

    kind: str
    t_start: float
    wall_start: float
    t_end: float | None = None
    wall_end: float | None = None
    track_id: int | None = None
    confidence: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    count: int | None = None
    thumbnail: str | None = None
    chunk_seq: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord:
    id: int
    camera: str
    kind: str
    t_start: float
    t_end: float | None
    wall_start: float
    wall_end: float | None
    track_id: int | None
    confidence: float | None
    bbox: list[float] | None
    count: int | None
    thumbnail: str | None
    chunk_seq: int | None
    details: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class QueryRecord:
    id: int
    camera: str
    question: str
    since: float | None
    until: float | None
    backend: str
    answer: str | None
    intervals: list[Any]
    evidence: list[Any]
    chunks_used: list[Any]
    latency_ms: float | None
    error: str | None
    created_at: float


@dataclass(frozen=True)
class NewAlert:
    """An alert to insert; a repeated `dedup_key` returns the stored row instead."""

    camera: str
    rule: str
    kind: str
    message: str
    wall_time: float
    dedup_key: str
    t: float | None = None
    score: float | None = None
    thumbnail: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    camera: str
    rule: str
    kind: str
    message: str
    wall_time: float
    t: float | None
    score: float | None
    thumbnail: str | None
    dedup_key: str
    details: dict[str, Any]
    delivered_at: float | None
    delivery_attempts: int
    last_error: str | None
    created_at: float
    acknowledged_at: float | None = None  # when an operator acknowledged it


@dataclass(frozen=True)
class AlertRuleRecord:
    id: int
    name: str
    camera: str | None
    kind: str
    params: dict[str, Any]
    enabled: bool
    created_at: float


R = TypeVar("R")


def to_record(cls: type[R], row: object, **extra: Any) -> R:
    """Copy the dataclass's fields from an ORM row; `extra` supplies the rest (camera)."""
    values = {f.name: extra[f.name] if f.name in extra else getattr(row, f.name)
              for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**values)
