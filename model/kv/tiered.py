"""TieredChunkStore: the engine's `ChunkTensorStore` over GPU pool, host pool, disk, cold.

Owns the execution of the index's plans (one op at a time, each committed to the index as
soon as its bytes moved, so a failure part-way leaves records and bytes in agreement),
reads from whichever tier holds a chunk, the handling of a lost chunk (a corrupt file is
quarantined, the chunk is reported and the camera keeps running), recovery from the data
folder after a restart, retention sweeps and stats. It deliberately makes no placement
decision of its own (`KVIndex` does) and knows nothing of the model: what a chunk becomes
on disk (FP8, the coarse form pooled further) is an injected `model.kv.codec.DiskCodec`,
and the index accounts every tier at the memory form's size (for the disk, an upper bound).

Tensors returned by `get` from a preallocated GPU slab alias the pool: they stay valid
while the chunk is pinned, or until the next `put`/`get` that could spill it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from model.engine.store import ChunkKey, ChunkUnavailable
from model.kv.codec import CODEC_META_KEYS, MEMORY_BYTES_KEY, Chain, DiskCodec, Fp8Codec
from model.kv.cold import ColdTier
from model.kv.disk import CorruptChunkFile, DiskKVStore, tensor_bytes
from model.kv.index import KVIndex, Op, Plan, Tier
from model.kv.policy import FORMS, TierConfig
from model.kv.pools import GpuPool, HostPool
from model.kv.writer import DiskWriter


@dataclass(frozen=True)
class Reconciliation:
    camera: str
    missing: tuple[int, ...]  # chunk rows without KV (lost with an unwritten file)
    orphans: tuple[int, ...]  # KV without a chunk row (kept: the row may follow)


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")


class TieredChunkStore:
    """One store per camera group (one GPU). All public methods are thread-safe."""

    def __init__(self, cfg: TierConfig, disk: DiskKVStore | str | Path,
                 device: str | torch.device = "cpu",
                 *, cold: ColdTier | None = None, clock: Callable[[], float] = time.time,
                 preallocate: bool | None = None, codec: DiskCodec | None = None):
        self.cfg = cfg
        self.device = torch.device(device)
        self.index = KVIndex(cfg, has_cold=cold is not None)
        self.gpu = GpuPool(self.device, cfg.gpu_bytes, preallocate=preallocate)
        self.host = HostPool(cfg.host_bytes, preallocate=preallocate)
        # The disk tier is injected (a folder is shorthand for a DiskKVStore over it).
        self.disk = disk if isinstance(disk, DiskKVStore) else DiskKVStore(disk)
        # Write-behind: every disk write and delete goes through one ordered writer thread.
        self.writer = DiskWriter(self.disk) if cfg.write_behind else None
        # What a chunk becomes on disk and back (default: as in memory; FP8 files still
        # read back); the pools always hold the memory form.
        self.codec = codec if codec is not None else Chain(Fp8Codec(enabled=False))
        self.cold = cold
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.lost: list[tuple[ChunkKey, str, str]] = []  # (key, form, reason), newest last
        self._meta: dict[ChunkKey, dict[str, str]] = {}
        self._lock = threading.RLock()
        self.recover()

    # ---- ChunkTensorStore ---------------------------------------------------------------
    def put(self, key: ChunkKey, form: str, tensors: dict[str, torch.Tensor],
            meta: dict[str, str]) -> None:
        _check_form(form)
        with self._lock:
            merged = {**self._meta.get(key, {}), **meta}
            plan = self.index.plan_add(key, form, tensor_bytes(tensors), created=self.clock())
            self._meta[key] = merged
            try:
                self._run(plan, payload={(*key, form): tensors})
            except BaseException:
                self.index.abandon(key, form)
                raise

    def get(self, key: ChunkKey, form: str) -> dict[str, torch.Tensor]:
        _check_form(form)
        with self._lock:
            entry = self.index.entry(key, form)
            if entry is None or entry.tier in (Tier.DROPPED, Tier.LOST):
                self.counters["unavailable"] += 1
                reason = "not stored, or dropped by retention" if entry is None else entry.reason
                raise ChunkUnavailable(key, form, reason)
            self.index.touch(key)
            ek = (*key, form)
            if entry.tier == Tier.GPU:
                self.counters["hits"] += 1
                return self.gpu.get(ek)
            self.counters["misses"] += 1
            try:
                plan = self.index.plan_load(key, form)
                if plan:
                    self._run(plan)
                    return self.gpu.get(ek)
                self.counters["transient_reads"] += 1
                return {k: v.to(self.device) for k, v in self._read(ek, entry.tier).items()}
            except CorruptChunkFile as exc:
                raise self._lose(key, form, exc) from exc

    def has(self, key: ChunkKey, form: str) -> bool:
        _check_form(form)
        with self._lock:
            e = self.index.entry(key, form)
            return e is not None and e.tier not in (Tier.DROPPED, Tier.LOST)

    def meta(self, key: ChunkKey) -> dict[str, str]:
        with self._lock:
            if key not in self._meta or self.index.record(key) is None:
                raise ChunkUnavailable(key, "meta", "not stored, or dropped by retention")
            return dict(self._meta[key])

    def seqs(self, camera: str) -> list[int]:
        with self._lock:
            return self.index.seqs(camera)

    def pin(self, keys: Iterable[ChunkKey]) -> None:
        with self._lock:
            self.index.pin(list(keys))

    def unpin(self, keys: Iterable[ChunkKey]) -> None:
        with self._lock:
            self.index.unpin(list(keys))

    def mark_important(self, key: ChunkKey) -> None:
        """Keep the chunk's fine KV (persisted now where it is kept in memory only)."""
        with self._lock:
            self._run(self.index.plan_important(key))
            self.disk.mark_important(key[0], {key[1]})  # survives a restart

    def drop_camera(self, camera: str) -> None:
        with self._lock:
            self._run(self.index.plan_drop_camera(camera))
            if self.writer is not None:
                self.writer.drop_camera(camera)
            else:
                self.disk.drop_camera(camera)
            for key in [k for k in self._meta if k[0] == camera]:
                del self._meta[key]

    # ---- operations beyond the protocol ----------------------------------------------------
    def sweep(self, now: float | None = None) -> int:
        """Retention: drop expired forms everywhere; returns how many forms went."""
        with self._lock:
            plan = self.index.plan_sweep(self.clock() if now is None else now)
            self._run(plan)
            for key in {op.key for op in plan.ops}:
                if self.index.record(key) is None:
                    self._meta.pop(key, None)
            return len(plan.ops)

    def set_budgets(self, gpu: int | None = None, host: int | None = None,
                    disk: int | None = None) -> None:
        with self._lock:
            plan = self.index.set_budgets(gpu=gpu, host=host, disk=disk)
            self._run(plan)
            self.gpu.capacity = self.index.budget(Tier.GPU)
            self.host.capacity = self.index.budget(Tier.HOST)

    def where(self, key: ChunkKey, form: str) -> Tier | None:
        with self._lock:
            e = self.index.entry(key, form)
            return None if e is None else e.tier

    def stats(self) -> dict:
        """Bytes and chunk counts per tier per camera, budgets, and event counters."""
        with self._lock:
            tiers = {t.value: {"used": self.index.used(t), "budget": self.index.budget(t)}
                     for t in (Tier.GPU, Tier.HOST, Tier.DISK)}
            out = {"cameras": self.index.stats(), "tiers": tiers,
                   "counters": dict(self.counters), "lost": len(self.lost),
                   "pool_fallback_allocs": self.gpu.fallback_allocs + self.host.fallback_allocs}
        if self.writer is not None:
            w = self.writer.stats
            out["writer"] = {**self.writer.backlog(), "written": w.written,
                             "bytes_written": w.bytes_written, "stalls": w.stalls,
                             "stalled_s": round(w.stalled_s, 3), "errors": w.errors,
                             "last_error": w.last_error,
                             "recovery_point": dict(w.persisted_through)}
        return out

    def flush(self, timeout_s: float = 300.0) -> bool:
        """Wait until every disk write asked for so far is on the disk (no-op when writes
        are synchronous)."""
        return self.writer.flush(timeout_s) if self.writer is not None else True

    def close(self, timeout_s: float = 300.0) -> bool:
        """Flush and stop the writer (a clean shutdown); the store is not used after."""
        return self.writer.close(timeout_s) if self.writer is not None else True

    def check_integrity(self) -> None:
        """The index's invariants, and that pools and files hold exactly what it records."""
        self.flush()
        with self._lock:
            self.index.check_integrity()
            want = {Tier.GPU: set(), Tier.HOST: set(), Tier.COLD: set()}
            files = set()
            for key in self.index.chunk_keys():
                for form, e in self.index.record(key).forms.items():
                    if e.tier in want:
                        want[e.tier].add((*key, form))
                    if e.durable:
                        files.add((*key, form))
            assert set(self.gpu.keys()) == want[Tier.GPU], "gpu pool disagrees with the index"
            assert set(self.host.keys()) == want[Tier.HOST], "host pool disagrees with the index"
            on_disk = {(cf.camera, cf.seq, cf.form) for cf in self.disk.scan()}
            assert on_disk == files, f"disk files {on_disk ^ files} disagree with the index"
            if self.cold is not None:
                cold = {self._cold_name(ek) for ek in want[Tier.COLD]}
                assert set(self.cold.names()) == cold, "cold objects disagree with the index"

    # ---- recovery -------------------------------------------------------------------------
    def recover(self) -> None:
        """Rebuild the index from the data folder (and the cold tier): every chunk comes back
        on disk; importance marks are reapplied; unreadable headers are reported as lost."""
        with self._lock:
            found = [(cf, Tier.DISK) for cf in self.disk.scan(cleanup=True)]
            for cf, tier in found:
                try:
                    meta, created = self.disk.read_header(cf.path)
                except CorruptChunkFile as exc:
                    self.disk.quarantine(cf.camera, cf.seq, cf.form)
                    self.lost.append(((cf.camera, cf.seq), cf.form, exc.reason))
                    continue
                self._recover_one(cf.camera, cf.seq, cf.form, cf.nbytes, tier, meta, created)
            if self.cold is not None:
                self._recover_cold()
            for camera in self.index.cameras():
                for seq in self.disk.important(camera):
                    self.index.mark_important((camera, seq))
            self._run(self.index.plan_rebalance())

    def reconcile(self, camera: str, db_seqs: Iterable[int],
                  important: Iterable[int] = ()) -> Reconciliation:
        """Second half of recovery: the database's view of the camera (chunk rows, chunks
        with events or alerts). Importance is reapplied; chunks the database has but the
        disk lacks are reported lost; chunks only on disk are kept and reported."""
        with self._lock:
            for seq in important:
                self.mark_important((camera, int(seq)))
            db = {int(s) for s in db_seqs}
            have = {seq for seq in self.index.all_seqs(camera)
                    if self.has((camera, seq), "coarse") or self.has((camera, seq), "fine")}
            missing = tuple(sorted(db - have))
            for seq in missing:
                self.lost.append(((camera, seq), "coarse", "in the database but not on disk"))
            return Reconciliation(camera, missing, tuple(sorted(have - db)))

    def _recover_one(self, camera, seq, form, nbytes, tier, meta, created) -> None:
        key = (camera, seq)
        if self.index.entry(key, form) is not None:
            return  # a disk copy wins over a cold copy of the same form
        # The index accounts the memory form (what a load puts in a pool), not the file's.
        nbytes = int(meta.get(MEMORY_BYTES_KEY, nbytes))
        self.index.recover_entry(key, form, nbytes, tier, self.clock() if created is None
                                 else created)
        meta = {k: v for k, v in meta.items() if k not in CODEC_META_KEYS}
        self._meta[key] = {**self._meta.get(key, {}), **meta}

    def _recover_cold(self) -> None:
        for name in self.cold.names():
            camera, _, fname = name.partition("/")
            parts = fname.split(".")
            if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in FORMS:
                continue
            # A leading dot keeps the scratch folder out of the disk scan's camera list.
            with tempfile.TemporaryDirectory(dir=self.disk.root, prefix=".cold-") as tmp:
                path = Path(tmp) / fname
                self.cold.download(name, path)
                try:
                    meta, created = self.disk.read_header(path)
                except CorruptChunkFile as exc:
                    self.lost.append(((camera, int(parts[0])), parts[1], exc.reason))
                    continue
                nbytes = self.disk.tensor_bytes_of(path, path.stat().st_size)
            self._recover_one(camera, int(parts[0]), parts[1], nbytes, Tier.COLD, meta, created)

    # ---- plan execution -----------------------------------------------------------------
    def _run(self, plan: Plan, payload: dict | None = None) -> None:
        for op in plan.ops:
            self._do(op, payload or {})
            self.index.commit(Plan((op,)))
            if op.kind in ("spill", "load", "drop"):
                self.counters[op.kind + "s"] += 1

    def _do(self, op: Op, payload: dict) -> None:
        ek = (op.camera, op.seq, op.form)
        created = self.index.record(op.key).created
        meta = self._meta.get(op.key, {})
        if op.kind == "place":
            self._store(ek, op.dst, payload[ek], meta, created)
        elif op.kind == "persist":
            self._write(ek, payload.get(ek) or self._pool(op.src).get(ek), meta, created)
        elif op.kind == "unpersist":
            self._delete(ek)
        elif op.kind in ("spill", "load"):
            self._move(ek, op, meta, created)
        elif op.kind == "drop":
            self._pool_discard(ek)
            self._delete(ek)
            if self.cold is not None and op.src == Tier.COLD:
                self.cold.delete(self._cold_name(ek))

    def _move(self, ek, op: Op, meta, created) -> None:
        durable = self.index.entry(op.key, op.form).durable
        if op.dst == Tier.COLD:
            self.flush()  # the file must be on disk before it is uploaded
            self.cold.upload(self._cold_name(ek), self.disk.path(*ek))
            self.disk.delete(*ek)
            return
        if op.dst == Tier.DISK:
            if not durable:  # write-through already left a file otherwise
                self._write(ek, self._read(ek, op.src), meta, created)
        else:
            tensors = self._read(ek, op.src)
            self._pool(op.dst).put(ek, tensors)
            if op.src in (Tier.GPU, Tier.HOST):
                # A slab span is reused as soon as it is released: the copy out of it must
                # have finished first. The compute stream itself is never blocked.
                self._pool(op.dst).wait(ek)
        if op.src in (Tier.GPU, Tier.HOST):
            self._pool(op.src).discard(ek)

    def _store(self, ek, tier: Tier, tensors, meta, created) -> None:
        if tier == Tier.DISK:
            self._write(ek, tensors, meta, created)
        else:
            self._pool(tier).put(ek, tensors)

    def _write(self, ek, tensors, meta, created) -> None:
        meta = {k: v for k, v in meta.items() if k not in CODEC_META_KEYS}
        memory_nbytes = tensor_bytes(tensors)
        tensors, extra = self.codec.encode(ek[2], tensors, meta)
        meta = {**meta, **extra, MEMORY_BYTES_KEY: str(memory_nbytes)}
        if self.writer is not None:
            self.writer.write(ek, tensors, meta, created)  # its own copy; never waits here
        else:
            self.disk.write(*ek, tensors, meta, created)

    def _delete(self, ek) -> None:
        if self.writer is not None:
            self.writer.delete(ek)  # after any queued write of the same form
        else:
            self.disk.delete(*ek)

    def _read(self, ek, tier: Tier) -> dict[str, torch.Tensor]:
        if tier in (Tier.GPU, Tier.HOST):
            return self._pool(tier).get(ek)
        if tier == Tier.DISK:
            queued = self.writer.pending(ek) if self.writer is not None else None
            tensors, meta = queued if queued is not None else self.disk.read(*ek)
        else:
            with tempfile.TemporaryDirectory(dir=self.disk.root, prefix=".cold-") as tmp:
                path = Path(tmp) / "chunk.safetensors"
                self.cold.download(self._cold_name(ek), path)
                tensors, meta = self.disk.read_path(path)
        return self.codec.decode(ek[2], tensors, meta)

    def _pool(self, tier: Tier):
        return self.gpu if tier == Tier.GPU else self.host

    def _pool_discard(self, ek) -> None:
        self.gpu.discard(ek)
        self.host.discard(ek)

    def _cold_name(self, ek) -> str:
        return f"{ek[0]}/{ek[1]:012d}.{ek[2]}.safetensors"

    def _lose(self, key: ChunkKey, form: str, exc: CorruptChunkFile) -> ChunkUnavailable:
        """A corrupt file costs that chunk's form only: quarantine, record, report."""
        self.disk.quarantine(*key, form)
        entry = self.index.entry(key, form)
        if self.cold is not None and entry is not None and entry.tier == Tier.COLD:
            self.cold.delete(self._cold_name((*key, form)))  # an object store keeps no corpse
        plan = self.index.plan_lost(key, form, exc.reason)
        for op in plan.ops:  # the file is already gone: only forget the other copies
            self._pool_discard((*key, form))
            self.index.commit(Plan((op,)))
        self.lost.append((key, form, exc.reason))
        self.counters["lost"] += 1
        return ChunkUnavailable(key, form, f"lost: {exc}")
