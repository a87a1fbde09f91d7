"""The `record` settings of a camera and the service-wide `recordings` section.

Lives beside the recorder; `pipeline.config` mounts `RecordConfig` in every camera's
settings (`camera_defaults.record`, `cameras.<name>.record`, merged key by key) and
`RecordingsConfig` at `recordings`. Validation only: nothing here touches the disk.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from model.cv.events import EVENT_KINDS

RecordMode = Literal["off", "continuous", "events"]


class RecordConfig(BaseModel):
    """How one camera records (Frigate's `record` modes): `off`; `continuous`; `events`:
    only around CV events (`event_kinds`, empty: every kind, motion included), from
    `pre_s` before an event starts to `post_s` after it ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RecordMode = "off"
    segment_s: float = Field(10.0, ge=1, le=600)  # a segment ends at the next keyframe after
    pre_s: float = Field(5.0, ge=0, le=300)
    post_s: float = Field(10.0, ge=0, le=600)
    event_kinds: list[str] = Field(default_factory=list)
    retain_days: float = Field(7.0, gt=0, le=3650)  # segments older than this are deleted
    max_gb: float = Field(20.0, gt=0, le=1_000_000)  # and the oldest past this many GB
    # packets waiting for the segment writer before the oldest are dropped (a slow disk)
    queue_packets: int = Field(2048, ge=64, le=1_000_000)

    @field_validator("event_kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        for kind in v:
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        return v

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def max_bytes(self) -> int:
        return int(self.max_gb * 1e9)


class RecordingsConfig(BaseModel):
    """Service-wide: the disk budget that every recording camera's `record.max_gb` must
    fit, checked when the service starts (None: the free space of the data dir's disk,
    a warning only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disk_budget_gb: float | None = Field(None, gt=0)
