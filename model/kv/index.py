"""KVIndex: where every chunk's fine and coarse KV lives, and plans to move it.

Owns the records (tier, bytes, disk copy, pins, importance, last use, creation time) of
every (camera, chunk seq, form) and turns events (a new chunk, a read, a budget change, a
retention sweep) into a `Plan` of ops. Planning is pure: it simulates the ops on an
overlay and leaves the records alone; `commit(plan)` applies a plan after the pools and
the disk store have carried it out. It deliberately never imports torch and never moves
bytes (DESIGN.md "Tiers and retention"; STYLE.md "decide in one object").

Disk accounting: a form's disk bytes count while a disk file exists (`durable`), also
when a faster tier holds the working copy (write-through). The cold tier has no budget.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import replace

from model.kv.policy import COARSE, FINE, FORMS, TierConfig, disk_victim_rank, expired, is_protected
from model.kv.records import (
    BUDGETED,
    READABLE,
    ChunkKey,
    ChunkRecord,
    Entry,
    EntryKey,
    Op,
    Plan,
    Tier,
    TierFull,
    apply_op,
)


class _Sim:
    """Copy-on-write view of the entries plus tier usage, on which plans are simulated."""

    def __init__(self, index: KVIndex):
        self.index = index
        self.over: dict[EntryKey, Entry] = {}
        self.used = dict(index._used)
        self.ops: list[Op] = []

    def entry(self, ek: EntryKey) -> Entry:
        if ek not in self.over:
            self.over[ek] = replace(self.index._chunks[ek[:2]].forms[ek[2]])
        return self.over[ek]

    def fork(self) -> _Sim:
        sim = _Sim.__new__(_Sim)
        sim.index, sim.used = self.index, dict(self.used)
        sim.over = {k: replace(v) for k, v in self.over.items()}
        sim.ops = list(self.ops)
        return sim

    def do(self, op: Op) -> None:
        apply_op(self.entry((op.camera, op.seq, op.form)), self.used, op)
        self.ops.append(op)

    def free(self, tier: Tier) -> int:
        return self.index._budget[tier] - self.used[tier]

    def in_tier(self, tier: Tier) -> list[EntryKey]:
        # Read the committed entry where the plan did not touch it: copying every entry of
        # the tier into the overlay made each put (and each fork after it) O(entries).
        over, chunks = self.over, self.index._chunks
        keys = self.index._by_tier[tier] | {k for k, e in over.items() if e.tier == tier}
        return [k for k in keys
                if (over[k] if k in over else chunks[k[:2]].forms[k[2]]).tier == tier]


PLACEHOLDER = "not yet placed"  # a form whose place op is planned but not yet committed


class KVIndex:
    """Bookkeeping for one store (one camera group). Not thread-safe: the store locks."""

    def __init__(self, cfg: TierConfig, *, has_cold: bool = False):
        self.cfg = cfg
        self.has_cold = has_cold
        self._chunks: dict[ChunkKey, ChunkRecord] = {}
        self._seqs: dict[str, list[int]] = {}
        self._by_tier: dict[Tier, set[EntryKey]] = {t: set() for t in Tier}
        self._used: dict[Tier, int] = {Tier.GPU: 0, Tier.HOST: 0, Tier.DISK: 0}
        self._budget: dict[Tier, int] = {
            Tier.GPU: cfg.gpu_bytes, Tier.HOST: cfg.host_bytes, Tier.DISK: cfg.disk_bytes
        }
        self._clock = itertools.count(1)

    # ---- queries -------------------------------------------------------------------
    def entry(self, key: ChunkKey, form: str) -> Entry | None:
        rec = self._chunks.get(key)
        return None if rec is None else rec.forms.get(form)

    def record(self, key: ChunkKey) -> ChunkRecord | None:
        return self._chunks.get(key)

    def seqs(self, camera: str) -> list[int]:
        """Chunks whose coarse KV is still readable, ascending."""
        out = []
        for seq in self._seqs.get(camera, []):
            e = self._chunks[(camera, seq)].forms.get(COARSE)
            if e is not None and e.tier in READABLE:
                out.append(seq)
        return out

    def all_seqs(self, camera: str) -> list[int]:
        """Every chunk the index still has a record of (any form, lost included)."""
        return list(self._seqs.get(camera, []))

    def chunk_keys(self) -> list[ChunkKey]:
        return list(self._chunks)

    def cameras(self) -> list[str]:
        return sorted(self._seqs)

    def used(self, tier: Tier) -> int:
        return self._used[tier]

    def budget(self, tier: Tier) -> int:
        return self._budget[tier]

    def pinned(self, key: ChunkKey) -> bool:
        rec = self._chunks.get(key)
        return rec is not None and rec.pins > 0

    def _protected(self, ek: EntryKey) -> bool:
        camera, seq, form = ek
        rec = self._chunks[(camera, seq)]
        return is_protected(form, seq, self._seqs.get(camera, []), self.cfg, rec.pins > 0)

    # ---- simple state changes (no bytes move) ---------------------------------------
    def touch(self, key: ChunkKey) -> None:
        if key in self._chunks:
            self._chunks[key].last_use = next(self._clock)

    def pin(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            if key in self._chunks:
                self._chunks[key].pins += 1

    def unpin(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            rec = self._chunks.get(key)
            if rec is not None and rec.pins > 0:
                rec.pins -= 1

    def mark_important(self, key: ChunkKey) -> None:
        if key in self._chunks:
            self._chunks[key].important = True

    def plan_important(self, key: ChunkKey) -> Plan:
        """Mark a chunk important; with persist_fine 'important', persist its fine KV now
        if a memory tier holds it without a disk copy and the disk has room."""
        self.mark_important(key)
        rec = self._chunks.get(key)
        e = None if rec is None else rec.forms.get(FINE)
        if (e is None or e.durable or e.tier not in (Tier.GPU, Tier.HOST)
                or not self.cfg.write_through):
            return Plan()
        sim = _Sim(self)
        ek = (*key, FINE)
        if not self._fit(sim, Tier.DISK, e.nbytes, exclude={ek}):
            return Plan()
        sim.do(Op("persist", *ek, e.tier, Tier.DISK, e.nbytes))
        return Plan(tuple(sim.ops))

    def _persists(self, ek: EntryKey) -> bool:
        """Does this form belong on disk (write-through, spills)? Coarse KV always; fine
        KV unless persist_fine is 'important' and the chunk is not."""
        return (ek[2] == COARSE or self.cfg.persist_fine == "all"
                or self._chunks[ek[:2]].important)

    def add_record(self, key: ChunkKey, created: float, *, important: bool = False) -> None:
        if key not in self._chunks:
            self._chunks[key] = ChunkRecord(created=created, important=important,
                                            last_use=next(self._clock))
            bisect.insort(self._seqs.setdefault(key[0], []), key[1])

    def recover_entry(self, key: ChunkKey, form: str, nbytes: int, tier: Tier,
                      created: float) -> None:
        """Register a form found on disk or in the cold tier after a restart."""
        assert tier in (Tier.DISK, Tier.COLD), tier
        self.add_record(key, created)
        assert form not in self._chunks[key].forms, (key, form)
        entry = Entry(tier=tier, nbytes=nbytes, durable=tier == Tier.DISK)
        self._chunks[key].forms[form] = entry
        self._by_tier[tier].add((*key, form))
        if entry.durable:
            self._used[Tier.DISK] += nbytes

    # ---- planning ---------------------------------------------------------------------
    def plan_add(self, key: ChunkKey, form: str, nbytes: int, created: float) -> Plan:
        """Place a new form: GPU if room can be made without touching protected chunks,
        else host, else disk; write-through adds a disk copy when the disk has room.
        The record is created now (so the chunk counts in the prefill window)."""
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        rec = self._chunks.get(key)
        if rec is not None and rec.pins and form in rec.forms:
            raise ValueError(f"chunk {key} {form} is pinned by a running prefill or question; "
                             "it cannot be replaced now")
        self.add_record(key, created)
        rec = self._chunks[key]
        prior = rec.forms.get(form)
        if prior is None:
            rec.forms[form] = Entry(tier=Tier.DROPPED, nbytes=nbytes, durable=False,
                                    reason=PLACEHOLDER)
            self._by_tier[Tier.DROPPED].add((*key, form))
        base = _Sim(self)
        ek = (*key, form)
        if prior is not None and prior.tier not in (Tier.DROPPED, Tier.LOST):
            base.do(Op("drop", *ek, prior.tier, None, prior.nbytes, "replaced"))
        base.entry(ek).nbytes = nbytes
        tiers = (Tier.GPU, Tier.HOST, Tier.DISK) if self._persists(ek) else (Tier.GPU, Tier.HOST)
        for dst in tiers:
            sim = base.fork()
            if self._fit(sim, dst, nbytes, exclude={ek}):
                sim.do(Op("place", *ek, None, dst, nbytes))
                if dst != Tier.DISK and self.cfg.write_through and self._persists(ek):
                    trial = sim.fork()
                    if self._fit(trial, Tier.DISK, nbytes, exclude={ek}):
                        trial.do(Op("persist", *ek, dst, Tier.DISK, nbytes))
                        sim = trial
                return Plan(tuple(sim.ops))
        self.abandon(key, form)
        raise TierFull(
            f"no tier can take {nbytes} B for {key} {form}: free gpu "
            f"{base.free(Tier.GPU)} B, host {base.free(Tier.HOST)} B, disk "
            f"{base.free(Tier.DISK)} B after every unpinned spill"
        )

    def abandon(self, key: ChunkKey, form: str) -> None:
        """Forget a form whose `place` was never committed (planning or writing failed)."""
        rec = self._chunks.get(key)
        e = None if rec is None else rec.forms.get(form)
        if e is not None and e.tier == Tier.DROPPED and e.reason == PLACEHOLDER:
            del rec.forms[form]
            self._by_tier[Tier.DROPPED].discard((*key, form))
        if rec is not None and not rec.forms:
            del self._chunks[key]
            seqs = self._seqs[key[0]]
            seqs.pop(bisect.bisect_left(seqs, key[1]))
            if not seqs:
                del self._seqs[key[0]]

    def plan_load(self, key: ChunkKey, form: str) -> Plan:
        """Promote a readable form to the GPU if room can be made without evicting
        protected chunks; an empty plan means 'already there' or 'read it transiently'."""
        entry = self.entry(key, form)
        if entry is None or entry.tier not in (Tier.HOST, Tier.DISK):
            return Plan()
        sim = _Sim(self)
        ek = (*key, form)
        if not self._fit(sim, Tier.GPU, entry.nbytes, exclude={ek}):
            return Plan()
        sim.do(Op("load", *ek, entry.tier, Tier.GPU, entry.nbytes))
        return Plan(tuple(sim.ops))

    def set_budgets(self, gpu: int | None = None, host: int | None = None,
                    disk: int | None = None) -> Plan:
        """Change budgets; refuses one below the pinned bytes it would have to hold."""
        new = {Tier.GPU: gpu, Tier.HOST: host, Tier.DISK: disk}
        for tier, value in new.items():
            if value is None:
                continue
            if value < 0:
                raise ValueError(f"{tier.value} budget must be >= 0, got {value}")
            pinned = self._pinned_bytes(tier)
            if value < pinned:
                raise ValueError(
                    f"{tier.value} budget {value} B is below the {pinned} B its pinned chunks "
                    "hold; unpin them first"
                )
        old = dict(self._budget)
        for tier, value in new.items():
            if value is not None:
                self._budget[tier] = value
        try:
            return self.plan_rebalance()
        except TierFull:
            self._budget = old
            raise

    def plan_rebalance(self) -> Plan:
        """Spill until every tier is within budget (after a budget cut or a recovery)."""
        sim = _Sim(self)
        for tier in BUDGETED:
            if sim.free(tier) < 0 and not self._fit(sim, tier, 0, exclude=set(),
                                                      allow_protected=True):
                raise TierFull(f"{tier.value} stays over budget: only pinned chunks left")
        return Plan(tuple(sim.ops))

    def plan_sweep(self, now: float) -> Plan:
        """Retention: drop expired forms (pinned chunks wait for their unpin)."""
        ops = []
        for (camera, seq), rec in self._chunks.items():
            if rec.pins:
                continue
            for form, e in rec.forms.items():
                if e.tier in READABLE and expired(form, rec.created, now, rec.important, self.cfg):
                    ops.append(Op("drop", camera, seq, form, e.tier, None, e.nbytes, "expired"))
        return Plan(tuple(ops))

    def plan_drop_camera(self, camera: str) -> Plan:
        ops = []
        for seq in self._seqs.get(camera, []):
            for form, e in self._chunks[(camera, seq)].forms.items():
                if e.tier in READABLE:
                    ops.append(Op("drop", camera, seq, form, e.tier, None, e.nbytes, "camera removed"))
        return Plan(tuple(ops))

    def plan_lost(self, key: ChunkKey, form: str, reason: str) -> Plan:
        e = self.entry(key, form)
        if e is None or e.tier in (Tier.DROPPED, Tier.LOST):
            return Plan()
        return Plan((Op("drop", *key, form, e.tier, None, e.nbytes, f"lost: {reason}"),))

    # ---- commit -------------------------------------------------------------------------
    def commit(self, plan: Plan) -> None:
        """Record that the pools and the disk store carried out `plan`."""
        for op in plan.ops:
            rec = self._chunks[op.key]
            entry = rec.forms[op.form]
            ek = (op.camera, op.seq, op.form)
            self._by_tier[entry.tier].discard(ek)
            apply_op(entry, self._used, op)
            self._by_tier[entry.tier].add(ek)
            if op.kind == "load":
                rec.last_use = next(self._clock)
        # A replaced form is placed again by the next op of the same plan: keep its record.
        self._forget_empty({op.key for op in plan.ops
                            if op.kind == "drop" and op.reason != "replaced"})

    def _forget_empty(self, keys: set[ChunkKey]) -> None:
        """A chunk with nothing readable left after a drop leaves the index (a lost form
        alone keeps its record, so that a read names the loss until the chunk expires)."""
        gone = (Tier.DROPPED, Tier.LOST)
        for key in keys:
            rec = self._chunks.get(key)
            forms = rec.forms.values() if rec else ()
            if forms and all(e.tier in gone for e in forms) \
                    and any(e.tier == Tier.DROPPED for e in forms) \
                    and not any(e.reason == PLACEHOLDER for e in forms):
                for form, e in rec.forms.items():
                    self._by_tier[e.tier].discard((*key, form))
                del self._chunks[key]
                seqs = self._seqs[key[0]]
                seqs.pop(bisect.bisect_left(seqs, key[1]))
                if not seqs:
                    del self._seqs[key[0]]

    # ---- room making ----------------------------------------------------------------------
    def _fit(self, sim: _Sim, tier: Tier, nbytes: int, exclude: set[EntryKey],
             allow_protected: bool = False) -> bool:
        """Push victims out of `tier` (into sim) until `nbytes` fit. Never moves a pinned
        chunk; protected (prefill/coarse window) chunks only when `allow_protected`."""
        if sim.free(tier) >= nbytes:
            return True
        if tier == Tier.DISK:
            return self._fit_disk(sim, nbytes, exclude)
        recs = self._chunks
        free, kept = [], []  # victims in order: unprotected by last use, then protected
        oldest_kept = self._window_starts()
        for k in sim.in_tier(tier):
            if k not in exclude and not recs[k[:2]].pins:
                # is_protected (policy.py) for an unpinned chunk, one lookup per entry
                (kept if k[1] >= oldest_kept[k[0]][k[2]] else free).append(k)
        free.sort(key=lambda k: (recs[k[:2]].last_use, k))
        if allow_protected:  # only then are protected ones ever pushed (sorted only then)
            kept.sort(key=lambda k: (recs[k[:2]].last_use, k))
            free += kept
        for ek in free:
            if sim.free(tier) >= nbytes:
                break
            # A victim with nowhere to go is skipped (sim unchanged): a smaller one, or one
            # whose disk copy already exists, may still make the room.
            self._push_down(sim, ek, tier, exclude | {ek})
        return sim.free(tier) >= nbytes

    def _window_starts(self) -> dict[str, dict[str, float]]:
        """Per camera and form, the oldest seq the GPU window protects (`is_protected`:
        the newest prefill_chunks fine and gpu_coarse_chunks coarse; a window of 0
        protects none; a camera with fewer chunks than its window keeps them all)."""
        out = {}
        for camera, seqs in self._seqs.items():
            starts = {}
            for form, window in ((FINE, self.cfg.prefill_chunks),
                                 (COARSE, self.cfg.gpu_coarse_chunks)):
                starts[form] = (float("inf") if window == 0 or not seqs
                                else seqs[-window] if len(seqs) >= window else float("-inf"))
            out[camera] = starts
        return out

    def _push_down(self, sim: _Sim, ek: EntryKey, tier: Tier, exclude: set[EntryKey]) -> bool:
        e = sim.entry(ek)
        lower = (Tier.HOST, Tier.DISK) if tier == Tier.GPU else (Tier.DISK,)
        memory_only = not self._persists(ek) and not e.durable
        if memory_only:  # fine KV kept in memory only: past the host pool it goes
            lower = tuple(t for t in lower if t != Tier.DISK)
        for dst in lower:
            need = 0 if (dst == Tier.DISK and e.durable) else e.nbytes
            trial = sim.fork()
            if self._fit(trial, dst, need, exclude):
                trial.do(Op("spill", *ek, tier, dst, e.nbytes))
                sim.over, sim.used, sim.ops = trial.over, trial.used, trial.ops
                return True
        if memory_only:  # nowhere lower to keep it: its coarse form remains
            sim.do(Op("drop", *ek, tier, None, e.nbytes, "fine kept in memory only"))
            return True
        return False

    def _fit_disk(self, sim: _Sim, nbytes: int, exclude: set[EntryKey]) -> bool:
        recs = self._chunks
        # Look at the simulated entry only where the plan touched it: copying every entry
        # into the overlay would make each put O(chunks on disk).
        def durable(k: EntryKey) -> bool:
            e = sim.over.get(k) or recs[k[:2]].forms[k[2]]
            return e.durable

        cands = [
            k for k in self._by_tier[Tier.DISK] | self._by_tier[Tier.GPU]
            | self._by_tier[Tier.HOST] | set(sim.over)
            if k not in exclude and not recs[k[:2]].pins and durable(k)
        ]
        # (seq, camera) break ties so that a plan never depends on set iteration order.
        cands.sort(key=lambda k: (*disk_victim_rank(k[2], recs[k[:2]].important,
                                                    recs[k[:2]].created), k[1], k[0]))
        # Free a little more than asked (1/32 of the budget): the scan above is O(chunks on
        # disk), so at a full disk it then runs once per many puts instead of every put.
        target = nbytes + self._budget[Tier.DISK] // 32
        for ek in cands:
            if sim.free(Tier.DISK) >= target:
                break
            e = sim.entry(ek)
            if e.tier == Tier.DISK:
                if self.has_cold:
                    sim.do(Op("spill", *ek, Tier.DISK, Tier.COLD, e.nbytes))
                else:
                    sim.do(Op("drop", *ek, Tier.DISK, None, e.nbytes, "disk budget"))
            else:
                sim.do(Op("unpersist", *ek, e.tier, None, e.nbytes))
        return sim.free(Tier.DISK) >= nbytes

    def _pinned_bytes(self, tier: Tier) -> int:
        total = 0
        for rec in self._chunks.values():
            if rec.pins:
                for e in rec.forms.values():
                    if e.tier == tier or (tier == Tier.DISK and e.durable):
                        total += e.nbytes
        return total

    # ---- invariants and stats ---------------------------------------------------------------
    def check_integrity(self) -> None:
        """Raise AssertionError if any bookkeeping invariant is broken."""
        used = {Tier.GPU: 0, Tier.HOST: 0, Tier.DISK: 0}
        by_tier: dict[Tier, set[EntryKey]] = {t: set() for t in Tier}
        for (camera, seq), rec in self._chunks.items():
            assert rec.pins >= 0, (camera, seq, rec.pins)
            assert seq in self._seqs.get(camera, []), (camera, seq)
            for form, e in rec.forms.items():
                assert form in FORMS, form
                assert e.nbytes >= 0
                by_tier[e.tier].add((camera, seq, form))
                if e.tier in (Tier.GPU, Tier.HOST):
                    used[e.tier] += e.nbytes
                if e.tier == Tier.DISK:
                    assert e.durable, (camera, seq, form)
                if e.tier in (Tier.COLD, Tier.DROPPED, Tier.LOST):
                    assert not e.durable, (camera, seq, form, e.tier)
                if e.durable:
                    used[Tier.DISK] += e.nbytes
        assert used == self._used, (used, self._used)
        assert by_tier == self._by_tier, "per-tier sets disagree with the records"
        for camera, seqs in self._seqs.items():
            assert seqs == sorted(set(seqs)) and seqs, camera
            assert all((camera, s) in self._chunks for s in seqs), camera
        for tier in BUDGETED:
            assert self._used[tier] <= self._budget[tier], (tier, self._used, self._budget)

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """{camera: {"<tier>_bytes": n, "<tier>_chunks": n}} per form-tier placement."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (camera, _seq), rec in self._chunks.items():
            cam = out.setdefault(camera, {})
            for form, e in rec.forms.items():
                row = cam.setdefault(e.tier.value, {"bytes": 0, "fine": 0, "coarse": 0})
                row["bytes"] += e.nbytes if e.tier in READABLE else 0
                row[form] += 1
        return out


__all__ = ["COARSE", "FINE", "ChunkKey", "Entry", "KVIndex", "Op", "Plan", "Tier", "TierFull"]
