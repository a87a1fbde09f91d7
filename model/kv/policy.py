"""Tier budgets, retention and eviction order: pure decisions, no torch, no I/O.

Owns `TierConfig` (the budgets and TTLs the service maps its pydantic config onto), the
byte formula for a chunk's KV, and the small rules the index applies: which chunks must
stay on the GPU, when a form expires, and in which order the disk gives up chunks. It
deliberately holds no state: `KVIndex` keeps the records and calls these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1 << 30
HOUR = 3600.0
DAY = 24 * HOUR

FINE = "fine"
COARSE = "coarse"
FORMS = (FINE, COARSE)


@dataclass(frozen=True)
class TierConfig:
    """Budgets (bytes per tier for one store, i.e. one camera group on one GPU) and TTLs.

    `prefill_chunks` is the engine's `prev_chunks`: the fine KV of each camera's newest
    chunks that the next prefill reads. `gpu_coarse_chunks` is the recent coarse window
    kept on the GPU for questions (225 chunks = one hour at 1 fps).
    """

    gpu_bytes: int = 8 * GIB
    host_bytes: int = 32 * GIB
    disk_bytes: int = 512 * GIB
    fine_ttl_s: float = DAY
    coarse_ttl_s: float = 30 * DAY
    prefill_chunks: int = 3
    gpu_coarse_chunks: int = 225
    write_through: bool = True  # a put also lands on disk (which forms: persist_fine)
    # "all": every form is persisted; "important": coarse KV always, fine KV only of
    # important chunks (CV events, alerts, questions); other fine KV lives in the GPU
    # and host pools and is dropped, not spilled to disk, when they are full
    persist_fine: str = "all"
    # disk writes from a background writer (model.kv.writer): a put never waits for the
    # disk; a restart recovers what the writer acknowledged (its recovery point)
    write_behind: bool = False

    def __post_init__(self) -> None:
        for name in ("gpu_bytes", "host_bytes", "disk_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TierConfig.{name} must be an integer >= 0, got {value!r}")
        for name in ("fine_ttl_s", "coarse_ttl_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"TierConfig.{name} must be a finite number > 0, got {value!r}")
        if self.coarse_ttl_s < self.fine_ttl_s:
            raise ValueError(
                f"TierConfig.coarse_ttl_s ({self.coarse_ttl_s}) must be >= fine_ttl_s "
                f"({self.fine_ttl_s}): coarse KV is the longer-lived form"
            )
        if self.persist_fine not in ("all", "important"):
            raise ValueError(f"TierConfig.persist_fine must be 'all' or 'important', got "
                             f"{self.persist_fine!r}")
        for name in ("prefill_chunks", "gpu_coarse_chunks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TierConfig.{name} must be an integer >= 0, got {value!r}")

    @classmethod
    def from_gib(cls, gpu_gib: float, host_gib: float, disk_gib: float, **kw) -> TierConfig:
        """Budgets as the operator writes them (GiB per camera group, host, disk)."""
        return cls(
            gpu_bytes=int(gpu_gib * GIB),
            host_bytes=int(host_gib * GIB),
            disk_bytes=int(disk_gib * GIB),
            **kw,
        )

    def validate_against(
        self,
        prev_chunks: int,
        chunk_bytes: int,
        *,
        cameras: int = 1,
        coarse_chunk_bytes: int = 0,
    ) -> None:
        """Refuse a GPU budget that cannot hold every camera's prefill window.

        The window is the previous `prev_chunks` chunks plus the chunk being prefilled, in
        fine form, per camera; the recent coarse window is a preference and not required.
        """
        if prev_chunks != self.prefill_chunks:
            raise ValueError(
                f"TierConfig.prefill_chunks ({self.prefill_chunks}) differs from the engine's "
                f"prev_chunks ({prev_chunks})"
            )
        need = cameras * (prev_chunks + 1) * (chunk_bytes + coarse_chunk_bytes)
        if self.gpu_bytes < need:
            raise ValueError(
                f"TierConfig.gpu_bytes ({self.gpu_bytes} B = {self.gpu_bytes / GIB:.3f} GiB) "
                f"cannot hold the prefill window: {cameras} camera(s) x ({prev_chunks} + 1) "
                f"chunks x {chunk_bytes + coarse_chunk_bytes} B = {need} B "
                f"({need / GIB:.3f} GiB)"
            )


def kv_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, dtype_bytes: int) -> int:
    """Bytes of K and V for `tokens` tokens: layers x 2 x heads x head_dim x dtype."""
    return layers * 2 * kv_heads * head_dim * tokens * dtype_bytes


def chunk_tokens(groups: int, header_tokens: int, visual_per_group: int, ratio: int = 1) -> int:
    """Tokens one chunk keeps: headers verbatim plus visual slots pooled by `ratio`."""
    return groups * (header_tokens + math.ceil(visual_per_group / ratio))


def is_protected(
    form: str, seq: int, newest: list[int], cfg: TierConfig, pinned: bool
) -> bool:
    """Must this form stay on the GPU? `newest` is the camera's ascending seqs."""
    if pinned:
        return True
    window = cfg.prefill_chunks if form == FINE else cfg.gpu_coarse_chunks
    if window == 0 or not newest:
        return False
    return seq >= newest[-window] if len(newest) >= window else True


def expired(form: str, created: float, now: float, important: bool, cfg: TierConfig) -> bool:
    """Retention: fine lives fine_ttl (coarse_ttl when important); coarse lives coarse_ttl."""
    ttl = cfg.coarse_ttl_s if (form == COARSE or important) else cfg.fine_ttl_s
    return now - created >= ttl


def disk_victim_rank(form: str, important: bool, created: float) -> tuple[int, float]:
    """Order in which disk pressure gives up chunks: plain fine, important fine, coarse;
    oldest first within each class (what retention would drop next goes first)."""
    klass = 0 if form == FINE and not important else (1 if form == FINE else 2)
    return (klass, created)
