"""Typed records that cross boundaries between ingest, actors, engine, query and alerts.

Only frozen dataclasses live here (no behaviour beyond derived properties), so that what
travels between Ray actors is explicit and cheap to pickle. Times are floats: `t` values
are seconds since the camera's stream origin; `wall_*` values are Unix epoch seconds (UTC).
For files the origin is the start of the file and its wall time is the moment ingest
started; for live streams the origin is the first frame, anchored at its wall-clock time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

FRAMES_PER_GROUP = 4
GROUPS_PER_CHUNK = 4
FRAMES_PER_CHUNK = FRAMES_PER_GROUP * GROUPS_PER_CHUNK  # 16


class _ChunkTimes:
    """Derived times of a chunk with `times` (one per real frame, stream seconds)."""

    times: tuple[float, ...]

    @property
    def n_real(self) -> int:
        return len(self.times)

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def group_times(self) -> tuple[float, ...]:
        """Time of the first frame of each group of 4 (the `Time {t:.1f}s:` headers)."""
        return tuple(self.times[i] for i in range(0, self.n_real, FRAMES_PER_GROUP))


@dataclass(frozen=True, eq=False)
class FrameChunk(_ChunkTimes):
    """Up to 16 sampled frames of one camera: the unit of prefill and of CV analysis.

    `model_frames` holds 4 * ceil(n_real / 4) frames: the last partial group of a file is
    padded by repeating its last frame (DESIGN.md section 3). `analysis_frames` holds only
    the real frames, BGR (OpenCV order), at analysis resolution.
    """

    camera: str
    seq: int  # chunk index in the camera's stream, from 0, no gaps unless dropped
    times: tuple[float, ...]  # one per real frame, seconds since origin, non-decreasing
    wall_origin: float  # epoch seconds of t = 0
    model_frames: np.ndarray  # uint8 [F_pad, 384, 384, 3] RGB
    analysis_frames: np.ndarray  # uint8 [n_real, h, w, 3] BGR


    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the analysis frames: the pixels event boxes are measured in."""
        return int(self.analysis_frames.shape[2]), int(self.analysis_frames.shape[1])

    def for_memory(self, important: bool = False) -> ModelChunk:
        """What the memory actor reads: the model frames and times, no analysis frames."""
        return ModelChunk(self.camera, self.seq, self.times, self.wall_origin,
                          self.model_frames, important)


@dataclass(frozen=True, eq=False)
class ModelChunk(_ChunkTimes):
    """A chunk as the memory actor receives it: model frames only (about 7 MB for 16
    frames at 384 x 384), `important` when the CV analysis saw an event in it."""

    camera: str
    seq: int
    times: tuple[float, ...]
    wall_origin: float
    model_frames: np.ndarray  # uint8 [F_pad, 384, 384, 3] RGB
    important: bool = False


@dataclass(frozen=True)
class Event:
    """One CV event as the service sees it (alert rules, question answering, evidence):
    an events row, or an event `analyze` found without a database (id None)."""

    id: int | None
    camera: str
    kind: str
    t_start: float
    t_end: float | None
    wall_start: float
    wall_end: float | None
    track_id: int | None = None
    confidence: float = 0.0
    bbox: tuple[float, ...] | None = None  # x, y, w, h in analysis pixels
    count: int | None = None
    thumbnail: str | None = None  # relative to the data dir
    chunk_seq: int | None = None
    details: dict = field(default_factory=dict)
    frame_size: tuple[int, int] | None = None  # (width, height) the bbox is measured in

    @classmethod
    def from_emission(cls, em: Mapping[str, Any], camera: str, *, id: int | None = None,
                      chunk_seq: int | None = None,
                      frame_size: tuple[int, int] | None = None) -> Event:
        """From one detector emission as plain data (pipeline.ingest.analysis.emission)."""
        return cls(id, camera, em["kind"], em["t_start"], em["t_end"], em["wall_start"],
                   em["wall_end"], em["track_id"], em["confidence"],
                   tuple(em["bbox"]) if em["bbox"] else None, em["count"], em["thumbnail"],
                   chunk_seq, dict(em["details"]), frame_size)

    @classmethod
    def from_row(cls, row: Any, camera: str) -> Event:
        """From a storage EventRecord (the frame size travels in the row's details)."""
        details = dict(row.details or {})
        size = details.get("frame_size")
        return cls(row.id, camera, row.kind, row.t_start, row.t_end, row.wall_start,
                   row.wall_end, row.track_id, row.confidence or 0.0,
                   tuple(row.bbox) if row.bbox else None, row.count, row.thumbnail,
                   row.chunk_seq, details, tuple(size) if size else None)


@dataclass(frozen=True)
class ChunkScores:
    """Standing-question scores of one prefilled chunk: rule name -> P(yes)."""

    camera: str
    seq: int
    t: float  # stream seconds of the chunk's first frame
    wall_time: float
    scores: dict[str, float]
    thumbnail: str | None = None


@dataclass(frozen=True)
class MemoryAnswer:
    """The memory's answer to a question, in stream seconds (the query core maps it to
    wall-clock intervals and evidence)."""

    text: str
    intervals: tuple[tuple[float, float], ...] = ()
    interval_seqs: tuple[int | None, ...] = ()  # the chunk holding each interval's start
    chunks_used: tuple[tuple[int, str], ...] = ()  # (seq, "dense" | "coarse")
    scores: dict[int, float] = field(default_factory=dict)
    wall_origin: float | None = None


class CameraState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FAILED = "failed"  # gave up (files: unreadable; live cameras never give up)
    FINISHED = "finished"  # a file that was read to its end
    STOPPED = "stopped"
    UNPLACED = "unplaced"  # waits: no memory slot has room (ray.cameras_per_device)


@dataclass(frozen=True)
class CameraStatus:
    camera: str
    state: CameraState
    last_error: str | None = None  # credentials already masked
    reconnects: int = 0
    frames_decoded: int = 0
    frames_sampled: int = 0
    frames_dropped: int = 0
    chunks_emitted: int = 0
    updated_at: float = 0.0  # epoch seconds


@dataclass(frozen=True)
class Question:
    camera: str
    text: str
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, inclusive
    backend: str | None = None  # None: the camera's configured backend


@dataclass(frozen=True)
class AnswerInterval:
    start: float  # epoch seconds
    end: float
    t_start: float  # seconds since the camera's stream origin
    t_end: float
    label: str
    confidence: float
    thumbnail: str | None = None  # path relative to the data dir


@dataclass(frozen=True)
class Answer:
    camera: str
    question: str
    text: str
    backend: str
    intervals: tuple[AnswerInterval, ...] = ()
    latency_ms: float = 0.0
    evidence_event_ids: tuple[int, ...] = ()
    chunks_used: tuple[tuple[int, str], ...] = ()  # (chunk seq, "dense" | "coarse")
    query_id: int | None = None


@dataclass(frozen=True)
class AlertEvent:
    camera: str
    rule: str
    kind: str
    message: str
    wall_time: float  # epoch seconds of the triggering moment
    t: float  # seconds since the camera's stream origin
    score: float = 1.0
    thumbnail: str | None = None
    dedup_key: str = ""
    details: dict = field(default_factory=dict)
    alert_id: int | None = None
