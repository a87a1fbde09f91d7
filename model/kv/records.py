"""Records of the KV index: tiers, per-form entries, chunk records, ops and plans.

Owns the data types `KVIndex` keeps and returns, and `apply_op`, the one function that
changes an entry and the per-tier usage for an op (the index uses it both to simulate a
plan and to commit it, so the two can never disagree). Plain Python: no torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

ChunkKey = tuple[str, int]
EntryKey = tuple[str, int, str]  # (camera, seq, form)
OpKind = Literal["place", "persist", "unpersist", "spill", "load", "drop"]


class Tier(StrEnum):
    GPU = "gpu"
    HOST = "host"
    DISK = "disk"
    COLD = "cold"
    DROPPED = "dropped"
    LOST = "lost"


BUDGETED = (Tier.GPU, Tier.HOST, Tier.DISK)
READABLE = (Tier.GPU, Tier.HOST, Tier.DISK, Tier.COLD)


class TierFull(RuntimeError):
    """No tier can take the bytes without spilling pinned chunks; nothing was changed."""


@dataclass
class Entry:
    tier: Tier
    nbytes: int
    durable: bool  # a disk file exists
    reason: str = ""  # why dropped or lost


@dataclass
class ChunkRecord:
    created: float
    important: bool = False
    pins: int = 0
    last_use: int = 0
    forms: dict[str, Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class Op:
    """One step. `place`: new tensors into dst. `persist`: write a disk file of the working
    copy. `unpersist`: delete the disk file only. `spill`/`load`: move src -> dst (a spill to
    DISK writes the file unless durable). `drop`: forget the form everywhere."""

    kind: OpKind
    camera: str
    seq: int
    form: str
    src: Tier | None
    dst: Tier | None
    nbytes: int
    reason: str = ""

    @property
    def key(self) -> ChunkKey:
        return (self.camera, self.seq)


@dataclass(frozen=True)
class Plan:
    ops: tuple[Op, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.ops + other.ops)


def apply_op(entry: Entry, used: dict[Tier, int], op: Op) -> None:
    """The one place that changes an entry and the usage counters for an op."""
    n = entry.nbytes
    if op.kind == "place":
        entry.nbytes = n = op.nbytes
        entry.tier = op.dst
        if op.dst in BUDGETED and op.dst != Tier.DISK:
            used[op.dst] += n
        if op.dst == Tier.DISK:
            entry.durable = True
            used[Tier.DISK] += n
    elif op.kind == "persist":
        entry.durable = True
        used[Tier.DISK] += n
    elif op.kind == "unpersist":
        entry.durable = False
        used[Tier.DISK] -= n
    elif op.kind in ("spill", "load"):
        if op.src in (Tier.GPU, Tier.HOST):
            used[op.src] -= n
        if op.dst in (Tier.GPU, Tier.HOST):
            used[op.dst] += n
        if op.dst == Tier.DISK and not entry.durable:
            entry.durable = True
            used[Tier.DISK] += n
        if op.dst == Tier.COLD and entry.durable:
            entry.durable = False
            used[Tier.DISK] -= n
        entry.tier = op.dst
    elif op.kind == "drop":
        if entry.tier in (Tier.GPU, Tier.HOST):
            used[entry.tier] -= n
        if entry.durable:
            used[Tier.DISK] -= n
        entry.durable = False
        entry.tier = Tier.LOST if op.reason.startswith("lost") else Tier.DROPPED
        entry.reason = op.reason
