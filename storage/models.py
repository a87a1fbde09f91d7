"""SQLAlchemy 2.0 typed table models: cameras, chunks, events, queries, alerts, alert_rules
(and the per-sink delivery rows of alerts: alert_sinks, alert_deliveries).

Owns the schema as Python classes; the migration in storage/migrations/versions/ is written
to match it and is what creates tables (never `create_all`). Wall-clock times are epoch
seconds (UTC floats) so SQLite and PostgreSQL compare them the same way. Camera URLs are
only stored encrypted (`url_encrypted`) plus a masked copy for display; this module does
not encrypt (storage/secrets.py) and holds no queries (storage/repo.py).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so migrations can drop and alter them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> float:
    return time.time()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url_encrypted: Mapped[str] = mapped_column(Text)
    url_masked: Mapped[str] = mapped_column(Text)
    fps: Mapped[float] = mapped_column(Float, default=1.0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(32), default="new")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    updated_at: Mapped[float] = mapped_column(Float, default=_now, onupdate=_now)


def _camera_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("camera_id", "seq", name="uq_chunks_camera_id_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = _camera_fk()
    seq: Mapped[int] = mapped_column(Integer)
    t_start: Mapped[float] = mapped_column(Float)
    t_end: Mapped[float] = mapped_column(Float)
    wall_start: Mapped[float] = mapped_column(Float)
    wall_end: Mapped[float] = mapped_column(Float)
    n_frames: Mapped[int] = mapped_column(Integer)
    important: Mapped[bool] = mapped_column(Boolean, default=False)
    fine_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    coarse_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = _camera_fk()
    kind: Mapped[str] = mapped_column(String(32), index=True)
    t_start: Mapped[float] = mapped_column(Float)
    t_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    wall_start: Mapped[float] = mapped_column(Float, index=True)
    wall_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    bbox: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    thumbnail: Mapped[str | None] = mapped_column(Text, nullable=True)
    chunk_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Query(Base):
    __tablename__ = "queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = _camera_fk()
    question: Mapped[str] = mapped_column(Text)
    since: Mapped[float | None] = mapped_column(Float, nullable=True)
    until: Mapped[float | None] = mapped_column(Float, nullable=True)
    backend: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    intervals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    chunks_used: Mapped[list[Any]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, index=True)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = _camera_fk()
    rule: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    wall_time: Mapped[float] = mapped_column(Float, index=True)
    t: Mapped[float | None] = mapped_column(Float, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    thumbnail: Mapped[str | None] = mapped_column(Text, nullable=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    # An operator has seen it (the dashboard's or the API's acknowledge); NULL until then.
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AlertSink(Base):
    """A sink with its own delivery rows (MQTT): alerts after `since_alert_id` (the newest
    id when the sink was first enabled) are its outbox; older ones were never meant for it."""

    __tablename__ = "alert_sinks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    since_alert_id: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class AlertDelivery(Base):
    """One alert published to one such sink (the Redis stream keeps `alerts.delivered_at`)."""

    __tablename__ = "alert_deliveries"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"),
                                          primary_key=True)
    sink: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivered_at: Mapped[float] = mapped_column(Float, default=_now)


class AlertRule(Base):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    camera_id: Mapped[int | None] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
