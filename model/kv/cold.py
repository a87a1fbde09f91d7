"""ColdTier: the pluggable archive below the disk store, and a local-folder implementation.

Owns the interface an object store (S3, GCS, a NAS) has to offer to take chunk files the
disk budget can no longer hold: whole-file upload, download, delete, existence and a
prefix listing, keyed by a relative name like `cam-a/000000000042.coarse.safetensors`.
The cold tier has no budget here; retention still drops its objects. It deliberately
knows nothing about tensors, tiers or retention.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class ColdTier(Protocol):
    def upload(self, name: str, src: Path) -> None: ...
    def download(self, name: str, dst: Path) -> None: ...  # FileNotFoundError if absent
    def delete(self, name: str) -> None: ...
    def exists(self, name: str) -> bool: ...
    def names(self, prefix: str = "") -> list[str]: ...


class LocalDirColdTier:
    """A folder standing in for an object store (another disk, a mounted NAS)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"cold object name {name!r} escapes the cold folder")
        return path

    def upload(self, name: str, src: Path) -> None:
        dst = self._path(name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # whole objects only, as an object store would

    def download(self, name: str, dst: Path) -> None:
        shutil.copyfile(self._path(name), dst)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def names(self, prefix: str = "") -> list[str]:
        out = []
        for p in self.root.rglob("*"):
            if p.is_file() and not p.name.endswith(".part"):
                rel = p.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)
