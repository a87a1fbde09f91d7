"""DiskKVStore: one safetensors file per camera, chunk and form, written atomically.

Owns the on-disk layout `<root>/<camera>/<seq:012d>.<form>.safetensors`, atomic writes
(temporary name in the same folder, fsync, rename), a CRC32 of every tensor in the header
metadata so that a flipped byte is caught as surely as a truncated file, size accounting,
a scan for recovery, per-camera importance marks, and a retention sweep driven by a
predicate. It deliberately decides nothing about tiers or budgets (model/kv/ does) and
keeps tensors on the CPU.
"""

from __future__ import annotations

import json
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

CAMERA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FORMS = ("fine", "coarse")
_FILE_RE = re.compile(r"^(\d{12})\.(fine|coarse)\.safetensors$")
_RESERVED = "xlwatch."  # metadata keys the store itself writes
_IMPORTANT = "_important.json"


class CorruptChunkFile(Exception):
    """A chunk file that cannot be read back as written (truncated, corrupt, bad header)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"corrupt KV chunk file {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class ChunkFile:
    camera: str
    seq: int
    form: str
    path: Path
    nbytes: int  # tensor bytes (what the tiers budget), not the file size
    file_bytes: int


def _crc(t: torch.Tensor) -> int:
    return zlib.crc32(t.contiguous().view(-1).view(torch.uint8).numpy())


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


class DiskKVStore:
    """The disk tier. Thread-safe for distinct chunks; writers of one chunk serialize."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, camera: str, seq: int, form: str) -> Path:
        if not CAMERA_RE.match(camera):
            raise ValueError(f"camera name {camera!r} is not a valid store folder name")
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if not isinstance(seq, int) or seq < 0:
            raise ValueError(f"seq must be an integer >= 0, got {seq!r}")
        return self.root / camera / f"{seq:012d}.{form}.safetensors"

    def write(self, camera: str, seq: int, form: str, tensors: dict[str, torch.Tensor],
              meta: dict[str, str], created: float | None = None) -> ChunkFile:
        """Write atomically: a reader sees the old file, the new file, or none. `created`
        (epoch seconds) is kept in the header for retention after a restart."""
        bad = [k for k in meta if k.startswith(_RESERVED)]
        if bad:
            raise ValueError(f"meta keys {bad} use the reserved prefix {_RESERVED!r}")
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        header = dict(meta)
        header[_RESERVED + "crc32"] = json.dumps({k: _crc(v) for k, v in cpu.items()})
        if created is not None:
            header[_RESERVED + "created"] = repr(float(created))
        data = save(cpu, metadata=header)
        path = self.path(camera, seq, form)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return ChunkFile(camera, seq, form, path, tensor_bytes(cpu), len(data))

    def read(self, camera: str, seq: int, form: str) -> tuple[dict[str, torch.Tensor], dict]:
        return self.read_path(self.path(camera, seq, form))

    @staticmethod
    def read_path(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Tensors (CPU) and user metadata; CorruptChunkFile names the file and the fault."""
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except FileNotFoundError:
            raise
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CorruptChunkFile(path, f"{type(exc).__name__}: {exc}") from exc
        try:
            crcs = json.loads(header[_RESERVED + "crc32"])
        except (KeyError, ValueError) as exc:
            raise CorruptChunkFile(path, "missing or unreadable checksum header") from exc
        if set(crcs) != set(tensors):
            raise CorruptChunkFile(path, f"tensors {sorted(tensors)} != checksummed {sorted(crcs)}")
        for name, t in tensors.items():
            if _crc(t) != crcs[name]:
                raise CorruptChunkFile(path, f"checksum mismatch in tensor {name!r}")
        meta = {k: v for k, v in header.items() if not k.startswith(_RESERVED)}
        return tensors, meta

    @staticmethod
    def read_header(path: Path) -> tuple[dict[str, str], float | None]:
        """User metadata and creation time, without reading tensor data."""
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
            created = header.get(_RESERVED + "created")
            created = float(created) if created is not None else None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CorruptChunkFile(path, f"{type(exc).__name__}: {exc}") from exc
        return {k: v for k, v in header.items() if not k.startswith(_RESERVED)}, created

    def exists(self, camera: str, seq: int, form: str) -> bool:
        return self.path(camera, seq, form).exists()

    def delete(self, camera: str, seq: int, form: str) -> bool:
        try:
            self.path(camera, seq, form).unlink()
            return True
        except FileNotFoundError:
            return False

    def quarantine(self, camera: str, seq: int, form: str) -> Path | None:
        """Move a corrupt file aside (kept for inspection, no longer counted or scanned)."""
        path = self.path(camera, seq, form)
        dest = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, dest)
            return dest
        except FileNotFoundError:
            return None

    def scan(self, camera: str | None = None, *, cleanup: bool = False) -> Iterator[ChunkFile]:
        """Every chunk file (ascending per camera). With `cleanup` (at recovery, before any
        writer runs) temporary files left by a write that died before its rename go."""
        cams = [camera] if camera else sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and CAMERA_RE.match(p.name))
        for cam in cams:
            folder = self.root / cam
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if p.name.endswith(".tmp"):
                    if cleanup:
                        p.unlink(missing_ok=True)
                    continue
                m = _FILE_RE.match(p.name)
                if m is None:
                    continue
                size = p.stat().st_size
                yield ChunkFile(cam, int(m.group(1)), m.group(2), p,
                                self.tensor_bytes_of(p, size), size)

    @staticmethod
    def tensor_bytes_of(path: Path, size: int) -> int:
        """Tensor bytes from the header length prefix; a broken header counts the file size."""
        try:
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
            return max(0, size - 8 - n) if 0 < n < size else size
        except OSError:
            return size

    def bytes_used(self, camera: str | None = None) -> int:
        return sum(cf.file_bytes for cf in self.scan(camera))

    def sweep(self, expired: Callable[[ChunkFile], bool]) -> list[ChunkFile]:
        """Delete every file the predicate calls expired; running it twice removes nothing
        the second time."""
        removed = []
        for cf in list(self.scan()):
            if expired(cf):
                cf.path.unlink(missing_ok=True)
                removed.append(cf)
        return removed

    def drop_camera(self, camera: str) -> None:
        folder = self.root / camera
        if folder.is_dir():
            for p in folder.iterdir():
                p.unlink(missing_ok=True)
            folder.rmdir()

    # ---- importance marks (an event or alert keeps a chunk's fine KV) ------------------
    def important(self, camera: str) -> set[int]:
        path = self.root / camera / _IMPORTANT
        try:
            return set(json.loads(path.read_text()))
        except FileNotFoundError:
            return set()
        except ValueError:
            return set()  # a torn mark file only loses marks, never KV

    def mark_important(self, camera: str, seqs: set[int]) -> None:
        with self._lock:
            marks = sorted(self.important(camera) | set(seqs))
            path = self.root / camera / _IMPORTANT
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(marks))
            os.replace(tmp, path)
