"""DiskWriter: write-behind for the disk tier, so that a prefill step never waits for it.

Owns one thread that applies the disk tier's writes and deletes in the order they were
asked for, a bounded backlog (by bytes: past `max_bytes` a writer call waits, counted as
a stall, rather than grow without bound or lose what was asked to persist), read-your-
writes for chunks still queued, and the recovery point: per camera the newest chunk seq
whose every queued write has reached the disk (what a restart gets back). A write takes
its own copy of the tensors at once (GPU tensors by an asynchronous copy to pinned host
memory, ordered on the compute stream before any later kernel can reuse their slab), so
the caller may free or reuse its buffers. It decides nothing: `KVIndex` plans the ops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from model.kv.disk import DiskKVStore, tensor_bytes

log = logging.getLogger(__name__)
EntryKey = tuple[str, int, str]  # camera, seq, form


@dataclass
class _Write:
    ek: EntryKey
    tensors: dict[str, torch.Tensor]
    meta: dict[str, str]
    created: float | None
    nbytes: int
    ready: Any = None  # a CUDA event the host copy waits on, or None


@dataclass
class WriterStats:
    written: int = 0
    deleted: int = 0
    bytes_written: int = 0
    stalls: int = 0  # calls that waited for room in the backlog
    stalled_s: float = 0.0
    errors: int = 0
    last_error: str | None = None
    persisted_through: dict[str, int] = field(default_factory=dict)  # camera -> seq


class DiskWriter:
    def __init__(self, disk: DiskKVStore, max_bytes: int = 4 << 30) -> None:
        self.disk = disk
        self.max_bytes = max_bytes
        self._ops: deque[tuple[str, Any]] = deque()
        self._pending: dict[EntryKey, _Write] = {}  # newest queued write of each form
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name="kv-disk-writer", daemon=True)
        self._thread.start()

    # ---- asked by the store (under its lock) ------------------------------------------
    def write(self, ek: EntryKey, tensors: dict[str, torch.Tensor], meta: dict[str, str],
              created: float | None) -> None:
        item = _copy(ek, tensors, meta, created)
        with self._cond:
            if self._queued_bytes + item.nbytes > self.max_bytes and self._ops:
                started = time.monotonic()
                self.stats.stalls += 1
                while self._queued_bytes + item.nbytes > self.max_bytes and self._ops:
                    self._cond.wait(0.5)
                self.stats.stalled_s += time.monotonic() - started
            self._pending[ek] = item
            self._queued_bytes += item.nbytes
            self._ops.append(("write", item))
            self._cond.notify_all()

    def delete(self, ek: EntryKey) -> None:
        with self._cond:
            self._pending.pop(ek, None)
            self._ops.append(("delete", ek))
            self._cond.notify_all()

    def drop_camera(self, camera: str) -> None:
        with self._cond:
            for ek in [k for k in self._pending if k[0] == camera]:
                del self._pending[ek]
            self.stats.persisted_through.pop(camera, None)
            self._ops.append(("drop_camera", camera))
            self._cond.notify_all()

    def pending(self, ek: EntryKey) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """The tensors (host copies) and metadata of a write still queued, or None."""
        with self._cond:
            item = self._pending.get(ek)
        if item is None:
            return None
        if item.ready is not None:
            item.ready.synchronize()
        return item.tensors, item.meta

    def flush(self, timeout_s: float = 300.0) -> bool:
        """Wait until every write and delete asked for so far is on the disk."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._ops or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def close(self, timeout_s: float = 300.0) -> bool:
        done = self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        return done

    def backlog(self) -> dict:
        with self._cond:
            return {"ops": len(self._ops), "bytes": self._queued_bytes}

    # ---- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ops and not self._stop:
                    self._cond.wait()
                if not self._ops:
                    return
                kind, arg = self._ops.popleft()
                self._busy = True
            ok = False
            try:
                self._apply(kind, arg)
                ok = True
            except Exception as exc:  # noqa: BLE001 - keep writing the others; reported
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.exception("KV disk writer: %s failed", kind)
            finally:
                with self._cond:
                    if kind == "write":
                        self._done(arg, ok)
                    self._busy = False
                    self._cond.notify_all()

    def _done(self, item: _Write, ok: bool) -> None:
        """Under the lock: the write left the backlog; advance the recovery point."""
        self._queued_bytes -= item.nbytes
        if self._pending.get(item.ek) is item:
            del self._pending[item.ek]
        camera, seq, _ = item.ek
        through = self.stats.persisted_through
        if ok and seq > through.get(camera, -1) and not any(
                k[0] == camera and k[1] <= seq for k in self._pending):
            through[camera] = seq

    def _apply(self, kind: str, arg: Any) -> None:
        if kind == "write":
            if arg.ready is not None:
                arg.ready.synchronize()
            camera, seq, form = arg.ek
            self.disk.write(camera, seq, form, arg.tensors, arg.meta, arg.created)
            self.stats.written += 1
            self.stats.bytes_written += arg.nbytes
        elif kind == "delete":
            self.disk.delete(*arg)
            self.stats.deleted += 1
        elif kind == "drop_camera":
            self.disk.drop_camera(arg)


def _copy(ek: EntryKey, tensors: dict[str, torch.Tensor], meta: dict[str, str],
          created: float | None) -> _Write:
    """A write's own host copy of the tensors, taken now (asynchronously from a GPU)."""
    out, ready = {}, None
    for name, t in tensors.items():
        t = t.detach()
        if t.device.type == "cuda":
            host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            host.copy_(t, non_blocking=True)
            out[name] = host
        else:
            out[name] = t.clone()
    if any(t.device.type == "cuda" for t in tensors.values()):
        ready = torch.cuda.Event()
        ready.record()
    return _Write(ek, out, dict(meta), created, tensor_bytes(out), ready)
