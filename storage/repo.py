"""Repository functions: small, typed operations over one SQLAlchemy Session.

Every function takes the session first, flushes but never commits (the caller's
`Database.session()` block is the unit of work, so a refusal leaves nothing behind), and
returns frozen records from storage/records.py. Cameras are addressed by name. Input
validation of names and URLs happens at the edges (pipeline/validation.py); here only what
the database itself guarantees (uniqueness, existence) is checked.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import (
    Alert,
    AlertDelivery,
    AlertRule,
    AlertSink,
    Camera,
    Chunk,
    Event,
    Query,
)
from storage.records import (
    AlertRecord,
    AlertRuleRecord,
    CameraRecord,
    ChunkRecord,
    Conflict,
    EventRecord,
    NewAlert,
    NewEvent,
    NotFound,
    QueryRecord,
    RecordError,
    to_record,
)
from storage.secrets import UrlCipher, mask_text, mask_url

# ---------------------------------------------------------------- cameras


def _camera_row(s: Session, name: str) -> Camera:
    row = s.scalar(select(Camera).where(Camera.name == name))
    if row is None:
        raise NotFound("camera", name, "no such camera")
    return row


def _camera_id(s: Session, name: str) -> int:
    return _camera_row(s, name).id


def add_camera(
    s: Session,
    name: str,
    url: str,
    cipher: UrlCipher,
    *,
    fps: float = 1.0,
    options: dict[str, Any] | None = None,
    enabled: bool = True,
) -> CameraRecord:
    """Insert a camera; the URL is stored encrypted plus masked. Duplicate name -> Conflict."""
    if s.scalar(select(Camera.id).where(Camera.name == name)) is not None:
        raise Conflict("name", name, "a camera with this name already exists")
    row = Camera(
        name=name, url_encrypted=cipher.encrypt(url), url_masked=mask_url(url), fps=fps,
        options=dict(options or {}), enabled=enabled, status="new",
    )
    s.add(row)
    s.flush()
    return to_record(CameraRecord, row)


def get_camera(s: Session, name: str) -> CameraRecord | None:
    row = s.scalar(select(Camera).where(Camera.name == name))
    return None if row is None else to_record(CameraRecord, row)


def list_cameras(s: Session, *, enabled_only: bool = False) -> list[CameraRecord]:
    q = select(Camera).order_by(Camera.name)
    if enabled_only:
        q = q.where(Camera.enabled.is_(True))
    return [to_record(CameraRecord, r) for r in s.scalars(q)]


def camera_url(s: Session, name: str, cipher: UrlCipher) -> str:
    """The decrypted URL: for the ingest reader only; never print or log it."""
    return cipher.decrypt(_camera_row(s, name).url_encrypted)


def update_camera(
    s: Session,
    name: str,
    *,
    fps: float | None = None,
    options: dict[str, Any] | None = None,
    enabled: bool | None = None,
) -> CameraRecord:
    row = _camera_row(s, name)
    if fps is not None:
        row.fps = fps
    if options is not None:
        row.options = dict(options)
    if enabled is not None:
        row.enabled = enabled
    s.flush()
    return to_record(CameraRecord, row)


def remove_camera(s: Session, name: str) -> None:
    """Delete a camera and, explicitly, every row that refers to it (NotFound if absent)."""
    cam_id = _camera_id(s, name)
    # Explicit deletes rather than relying on ON DELETE CASCADE: SQLite enforces foreign
    # keys only when the pragma is on for that connection.
    alert_ids = select(Alert.id).where(Alert.camera_id == cam_id)
    s.execute(delete(AlertDelivery).where(AlertDelivery.alert_id.in_(alert_ids)))
    for model in (Chunk, Event, Query, Alert, AlertRule):
        s.execute(delete(model).where(model.camera_id == cam_id))
    s.execute(delete(Camera).where(Camera.id == cam_id))
    s.flush()


def set_camera_status(s: Session, name: str, status: str, last_error: str | None = None) -> None:
    row = _camera_row(s, name)
    row.status = status
    row.last_error = None if last_error is None else mask_text(last_error)
    s.flush()


# ---------------------------------------------------------------- chunks

_CHUNK_FIELDS = ("t_start", "t_end", "wall_start", "wall_end", "n_frames")


def upsert_chunk(
    s: Session,
    camera: str,
    seq: int,
    *,
    important: bool | None = None,
    fine_tier: str | None = None,
    coarse_tier: str | None = None,
    **times: float,
) -> ChunkRecord:
    """Insert or update chunk (camera, seq). New rows need t_start, t_end, wall_start,
    wall_end and n_frames; on update only given values change (`important` never clears
    once set, since an event may arrive after the chunk)."""
    unknown = set(times) - set(_CHUNK_FIELDS)
    if unknown:
        raise TypeError(f"upsert_chunk: unknown fields {sorted(unknown)}")
    cam_id = _camera_id(s, camera)
    row = s.scalar(select(Chunk).where(Chunk.camera_id == cam_id, Chunk.seq == seq))
    if row is None:
        missing = [f for f in _CHUNK_FIELDS if f not in times]
        if missing:
            raise RecordError(missing[0], None, f"required for new chunk {camera}#{seq}")
        row = Chunk(camera_id=cam_id, seq=seq, important=bool(important), **times)
        s.add(row)
    else:
        for k, v in times.items():
            setattr(row, k, v)
        if important:
            row.important = True
    if fine_tier is not None:
        row.fine_tier = fine_tier
    if coarse_tier is not None:
        row.coarse_tier = coarse_tier
    s.flush()
    return to_record(ChunkRecord, row, camera=camera)


def list_chunks(
    s: Session, camera: str, *, since_seq: int | None = None, until_seq: int | None = None
) -> list[ChunkRecord]:
    q = select(Chunk).where(Chunk.camera_id == _camera_id(s, camera)).order_by(Chunk.seq)
    if since_seq is not None:
        q = q.where(Chunk.seq >= since_seq)
    if until_seq is not None:
        q = q.where(Chunk.seq <= until_seq)
    return [to_record(ChunkRecord, r, camera=camera) for r in s.scalars(q)]


def mark_chunk_important(s: Session, camera: str, seq: int) -> bool:
    """Set `important`; False when the chunk row does not exist (yet)."""
    res = s.execute(
        update(Chunk).where(Chunk.camera_id == _camera_id(s, camera), Chunk.seq == seq)
        .values(important=True)
    )
    return bool(res.rowcount)


def delete_chunks(s: Session, camera: str, seqs: Iterable[int]) -> int:
    """Forget chunk rows whose KV was dropped by retention; returns how many went."""
    seqs = list(seqs)
    if not seqs:
        return 0
    res = s.execute(delete(Chunk).where(Chunk.camera_id == _camera_id(s, camera),
                                        Chunk.seq.in_(seqs)))
    return int(res.rowcount or 0)


# ---------------------------------------------------------------- events


def add_events(s: Session, camera: str, events: Iterable[NewEvent]) -> list[int]:
    """Insert events in order; returns their ids (same order)."""
    cam_id = _camera_id(s, camera)
    rows = []
    for e in events:
        values = asdict(e)
        if values["bbox"] is not None:
            values["bbox"] = [float(x) for x in values["bbox"]]
        rows.append(Event(camera_id=cam_id, **values))
    s.add_all(rows)
    s.flush()
    return [r.id for r in rows]


def update_event_end(
    s: Session, event_id: int, t_end: float, wall_end: float,
    details: dict[str, Any] | None = None,
) -> None:
    row = s.get(Event, event_id)
    if row is None:
        raise NotFound("event_id", event_id, "no such event")
    row.t_end, row.wall_end = t_end, wall_end
    if details:
        row.details = {**(row.details or {}), **details}
    s.flush()


def close_open_events(s: Session, camera: str, until_wall: float, reason: str) -> int:
    """End the camera's events still open (t_end NULL) at `until_wall` (never before an
    event's own start), recording why in details["closed"]; returns how many."""
    rows = s.scalars(select(Event).where(Event.camera_id == _camera_id(s, camera),
                                         Event.t_end.is_(None))).all()
    for row in rows:
        wall_end = max(row.wall_start, until_wall)
        row.t_end, row.wall_end = row.t_start + (wall_end - row.wall_start), wall_end
        row.details = {**(row.details or {}), "closed": reason}
    s.flush()
    return len(rows)


def _events_in(q: Any, since: float | None, until: float | None,
               kinds: Sequence[str] | None) -> Any:
    """`q` limited to events overlapping [since, until] (wall times; an open event lasts
    until now) and of `kinds`."""
    if since is not None:
        q = q.where(or_(Event.wall_end.is_(None), Event.wall_end >= since))
    if until is not None:
        q = q.where(Event.wall_start <= until)
    if kinds:
        q = q.where(Event.kind.in_(list(kinds)))
    return q


def list_events(
    s: Session,
    camera: str | None = None,
    since: float | None = None,
    until: float | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[EventRecord]:
    """Events overlapping [since, until] (wall times), oldest first; open events count as
    lasting until now."""
    q = select(Event, Camera.name).join(Camera, Camera.id == Event.camera_id)
    if camera is not None:
        q = q.where(Event.camera_id == _camera_id(s, camera))
    q = _events_in(q, since, until, kinds).order_by(Event.wall_start, Event.id).limit(limit)
    return [to_record(EventRecord, e, camera=name) for e, name in s.execute(q)]


def list_events_newest(
    s: Session,
    camera: str,
    since: float | None = None,
    until: float | None = None,
    kinds: Sequence[str] | None = None,
    *,
    before: tuple[float, int] | None = None,
    limit: int = 100,
) -> list[EventRecord]:
    """Events overlapping [since, until], newest first (by start, then id). `before` is
    the (wall_start, id) of the last event of the previous page: only older ones follow."""
    q = _events_in(select(Event).where(Event.camera_id == _camera_id(s, camera)), since,
                   until, kinds).order_by(Event.wall_start.desc(), Event.id.desc()).limit(limit)
    if before is not None:
        wall, event_id = before
        q = q.where(or_(Event.wall_start < wall,
                        and_(Event.wall_start == wall, Event.id < event_id)))
    return [to_record(EventRecord, e, camera=camera) for e in s.scalars(q)]


def delete_events_before(s: Session, wall: float) -> int:
    """Retention: drop events that ended (or started, if open) before `wall`."""
    res = s.execute(delete(Event).where(func.coalesce(Event.wall_end, Event.wall_start) < wall))
    return int(res.rowcount or 0)


# ---------------------------------------------------------------- queries


def add_query(
    s: Session,
    camera: str,
    question: str,
    backend: str,
    *,
    since: float | None = None,
    until: float | None = None,
    answer: str | None = None,
    intervals: Sequence[Any] = (),
    evidence: Sequence[Any] = (),
    chunks_used: Sequence[Any] = (),
    latency_ms: float | None = None,
    error: str | None = None,
) -> QueryRecord:
    row = Query(
        camera_id=_camera_id(s, camera), question=question, backend=backend, since=since,
        until=until, answer=answer, intervals=[list(i) if isinstance(i, tuple) else i
                                               for i in intervals],
        evidence=list(evidence), chunks_used=[list(c) if isinstance(c, tuple) else c
                                              for c in chunks_used],
        latency_ms=latency_ms, error=error,
    )
    s.add(row)
    s.flush()
    return to_record(QueryRecord, row, camera=camera)


def list_queries(s: Session, camera: str | None = None, limit: int = 50) -> list[QueryRecord]:
    """Most recent first."""
    q = select(Query, Camera.name).join(Camera, Camera.id == Query.camera_id)
    if camera is not None:
        q = q.where(Query.camera_id == _camera_id(s, camera))
    q = q.order_by(Query.id.desc()).limit(limit)
    return [to_record(QueryRecord, r, camera=name) for r, name in s.execute(q)]


# ---------------------------------------------------------------- alerts


def add_alert(s: Session, alert: NewAlert) -> AlertRecord:
    """Insert the alert, or return the stored one when its dedup_key exists (never raises
    on a duplicate, even when two writers race: the insert is ON CONFLICT DO NOTHING)."""
    values = asdict(alert)
    values["camera_id"] = _camera_id(s, values.pop("camera"))
    values.update(delivery_attempts=0, created_at=time.time())
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert(Alert).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"]))
    row = s.scalar(select(Alert).where(Alert.dedup_key == alert.dedup_key))
    assert row is not None
    return _alert_record(s, row)


def _alert_record(s: Session, row: Alert) -> AlertRecord:
    name = s.scalar(select(Camera.name).where(Camera.id == row.camera_id))
    return to_record(AlertRecord, row, camera=name)


def list_alerts(
    s: Session, after_id: int = 0, camera: str | None = None, limit: int = 100
) -> list[AlertRecord]:
    """Alerts with id > after_id, oldest first (a cursor for followers)."""
    q = select(Alert, Camera.name).join(Camera, Camera.id == Alert.camera_id)
    q = q.where(Alert.id > after_id)
    if camera is not None:
        q = q.where(Alert.camera_id == _camera_id(s, camera))
    q = q.order_by(Alert.id).limit(limit)
    return [to_record(AlertRecord, r, camera=name) for r, name in s.execute(q)]


def list_alerts_newest(
    s: Session,
    *,
    before: int | None = None,
    camera: str | None = None,
    kinds: Sequence[str] | None = None,
    limit: int = 100,
) -> list[AlertRecord]:
    """Alerts newest first (by id); `before`: only ids below it (the last id of the
    previous page is the cursor of the next)."""
    q = select(Alert, Camera.name).join(Camera, Camera.id == Alert.camera_id)
    if before is not None:
        q = q.where(Alert.id < before)
    if camera is not None:
        q = q.where(Alert.camera_id == _camera_id(s, camera))
    if kinds:
        q = q.where(Alert.kind.in_(list(kinds)))
    q = q.order_by(Alert.id.desc()).limit(limit)
    return [to_record(AlertRecord, r, camera=name) for r, name in s.execute(q)]


def get_alert(s: Session, alert_id: int) -> AlertRecord:
    row = s.get(Alert, alert_id)
    if row is None:
        raise NotFound("alert", alert_id, "no such alert")
    return _alert_record(s, row)


def acknowledge_alert(s: Session, alert_id: int, when: float | None = None) -> AlertRecord:
    """Mark the alert seen; acknowledging it again keeps the first time."""
    row = s.get(Alert, alert_id)
    if row is None:
        raise NotFound("alert", alert_id, "no such alert")
    if row.acknowledged_at is None:
        row.acknowledged_at = time.time() if when is None else when
        s.flush()
    return _alert_record(s, row)


def undelivered_alerts(s: Session, limit: int = 100) -> list[AlertRecord]:
    q = (select(Alert, Camera.name).join(Camera, Camera.id == Alert.camera_id)
         .where(Alert.delivered_at.is_(None)).order_by(Alert.id).limit(limit))
    return [to_record(AlertRecord, r, camera=name) for r, name in s.execute(q)]


def mark_alert_delivered(s: Session, alert_id: int, when: float | None = None) -> None:
    row = s.get(Alert, alert_id)
    if row is None:
        raise NotFound("alert_id", alert_id, "no such alert")
    row.delivered_at = time.time() if when is None else when
    row.delivery_attempts += 1
    row.last_error = None
    s.flush()


def record_delivery_failure(s: Session, alert_id: int, error: str) -> None:
    row = s.get(Alert, alert_id)
    if row is None:
        raise NotFound("alert_id", alert_id, "no such alert")
    row.delivery_attempts += 1
    row.last_error = mask_text(error)[:2000]
    s.flush()


def open_alert_sink(s: Session, sink: str) -> int:
    """The id after which alerts are `sink`'s to deliver: on its first use the newest
    alert's id (alerts from before the sink was enabled are not replayed to it)."""
    row = s.get(AlertSink, sink)
    if row is None:
        newest = int(s.scalar(select(func.max(Alert.id))) or 0)
        values = {"name": sink, "since_alert_id": newest, "created_at": time.time()}
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(insert(AlertSink).values(**values).on_conflict_do_nothing(
            index_elements=["name"]))
        row = s.get(AlertSink, sink, populate_existing=True)
    return row.since_alert_id


def _undelivered_to(sink: str, since: int) -> Any:
    delivered = select(AlertDelivery.alert_id).where(AlertDelivery.alert_id == Alert.id,
                                                     AlertDelivery.sink == sink)
    return and_(Alert.id > since, ~delivered.exists())


def alerts_for_sink(s: Session, sink: str, limit: int = 100) -> list[AlertRecord]:
    """Alerts not yet delivered to `sink`, oldest first (an alert committed late, with a
    lower id than one already delivered, is still found: no high-water mark)."""
    cond = _undelivered_to(sink, open_alert_sink(s, sink))
    q = (select(Alert, Camera.name).join(Camera, Camera.id == Alert.camera_id)
         .where(cond).order_by(Alert.id).limit(limit))
    return [to_record(AlertRecord, r, camera=name) for r, name in s.execute(q)]


def mark_delivered_to(s: Session, sink: str, alert_id: int, when: float | None = None) -> None:
    """Idempotent: a second delivery of the same alert keeps the first time."""
    values = {"alert_id": alert_id, "sink": sink,
              "delivered_at": time.time() if when is None else when}
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert(AlertDelivery).values(**values).on_conflict_do_nothing(
        index_elements=["alert_id", "sink"]))


def count_undelivered_to(s: Session, sink: str) -> int:
    """`sink`'s backlog: its alerts not yet delivered to it."""
    cond = _undelivered_to(sink, open_alert_sink(s, sink))
    return int(s.scalar(select(func.count(Alert.id)).where(cond)) or 0)


# ---------------------------------------------------------------- alert rules


def add_alert_rule(
    s: Session,
    name: str,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    camera: str | None = None,
    enabled: bool = True,
) -> AlertRuleRecord:
    if s.scalar(select(AlertRule.id).where(AlertRule.name == name)) is not None:
        raise Conflict("name", name, "an alert rule with this name already exists")
    cam_id = None if camera is None else _camera_id(s, camera)
    row = AlertRule(name=name, kind=kind, params=dict(params or {}), camera_id=cam_id,
                    enabled=enabled)
    s.add(row)
    s.flush()
    return to_record(AlertRuleRecord, row, camera=camera)


def upsert_alert_rule(
    s: Session,
    name: str,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    camera: str | None = None,
    enabled: bool = True,
) -> AlertRuleRecord:
    """Create or replace rule `name` (how config-file rules are synced into the table)."""
    row = s.scalar(select(AlertRule).where(AlertRule.name == name))
    if row is None:
        return add_alert_rule(s, name, kind, params, camera=camera, enabled=enabled)
    row.kind, row.params, row.enabled = kind, dict(params or {}), enabled
    row.camera_id = None if camera is None else _camera_id(s, camera)
    s.flush()
    return to_record(AlertRuleRecord, row, camera=camera)


def list_alert_rules(
    s: Session, camera: str | None = None, *, enabled_only: bool = False
) -> list[AlertRuleRecord]:
    """Rules for `camera` include global rules (camera NULL); None lists all rules."""
    q = select(AlertRule, Camera.name).outerjoin(Camera, Camera.id == AlertRule.camera_id)
    if camera is not None:
        q = q.where(or_(AlertRule.camera_id.is_(None),
                        AlertRule.camera_id == _camera_id(s, camera)))
    if enabled_only:
        q = q.where(AlertRule.enabled.is_(True))
    q = q.order_by(AlertRule.name)
    return [to_record(AlertRuleRecord, r, camera=name) for r, name in s.execute(q)]


def remove_alert_rule(s: Session, name: str) -> None:
    res = s.execute(delete(AlertRule).where(AlertRule.name == name))
    if not res.rowcount:
        raise NotFound("rule", name, "no such alert rule")


# ---------------------------------------------------------------- counts (health, metrics)


def count_events(s: Session, camera: str) -> int:
    return int(s.scalar(select(func.count(Event.id))
                        .where(Event.camera_id == _camera_id(s, camera))) or 0)


def count_undelivered_alerts(s: Session) -> int:
    """The relay's backlog: alert rows not yet published."""
    return int(s.scalar(select(func.count(Alert.id)).where(Alert.delivered_at.is_(None))) or 0)


def alert_counts(s: Session) -> list[dict[str, Any]]:
    """Alerts committed and delivered per camera and rule."""
    q = (select(Camera.name, Alert.rule, func.count(Alert.id), func.count(Alert.delivered_at))
         .join(Camera, Camera.id == Alert.camera_id).group_by(Camera.name, Alert.rule))
    return [{"camera": c, "rule": r, "raised": n, "delivered": d} for c, r, n, d in s.execute(q)]


def chunk_counts(s: Session) -> dict[str, int]:
    """Chunk rows per camera."""
    q = (select(Camera.name, func.count(Chunk.id))
         .join(Chunk, Chunk.camera_id == Camera.id).group_by(Camera.name))
    return {name: n for name, n in s.execute(q)}


def latest_chunk_seqs(s: Session) -> dict[str, int]:
    """The newest chunk's seq per camera (whose keyframe is the camera's snapshot)."""
    q = (select(Camera.name, func.max(Chunk.seq))
         .join(Chunk, Chunk.camera_id == Camera.id).group_by(Camera.name))
    return {name: int(seq) for name, seq in s.execute(q)}


def newest_alert_cursor(s: Session, camera: str | None, limit: int) -> int:
    """The cursor (after_id) from which `limit` alerts reach the newest one."""
    q = select(Alert.id).order_by(Alert.id.desc()).limit(limit)
    if camera is not None:
        q = q.where(Alert.camera_id == _camera_id(s, camera))
    ids = list(s.scalars(q))
    return min(ids) - 1 if ids else 0
