"""Typed records that cross boundaries between ingest, actors, engine, query and alerts.

Only frozen dataclasses live here (no behaviour beyond derived properties), so that what
travels between Ray actors is explicit and cheap to pickle. Times are floats: `t` values
are seconds since the camera's stream origin; `wall_*` values are Unix epoch seconds (UTC).
For files the origin is the start of the file and its wall time is the moment ingest
started; for live streams the origin is the first frame, anchored at its wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

FRAMES_PER_GROUP = 4
GROUPS_PER_CHUNK = 4
FRAMES_PER_CHUNK = FRAMES_PER_GROUP * GROUPS_PER_CHUNK  # 16


@dataclass(frozen=True, eq=False)
class FrameChunk:
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


class CameraState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FAILED = "failed"  # gave up (files: unreadable; live cameras never give up)
    FINISHED = "finished"  # a file that was read to its end
    STOPPED = "stopped"


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
