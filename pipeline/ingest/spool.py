"""Spool: a bounded, durable FIFO of JSON records in a folder, for rows the database
cannot take right now (an outage). One file per record, written atomically (temp file,
fsync, rename), named by a counter so that the order survives a restart. A full spool
refuses (the caller counts the loss); it never grows past `max_records`. It does not know
what the records mean: the camera's analysis and the alert core replay them in order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MAX_RECORDS = 20_000  # a camera's chunks: about 89 hours at 1 fps


class Spool:
    def __init__(self, folder: str | Path, max_records: int = MAX_RECORDS) -> None:
        self.folder = Path(folder)
        self.max_records = max_records
        self.folder.mkdir(parents=True, exist_ok=True)
        for tmp in self.folder.glob(".*.tmp"):  # a write cut short by a crash
            tmp.unlink(missing_ok=True)
        self._names = sorted(p.name for p in self.folder.glob("*.json"))
        self._next = int(self._names[-1].split(".")[0]) + 1 if self._names else 0

    def __len__(self) -> int:
        return len(self._names)

    def put(self, record: dict[str, Any]) -> str | None:
        """Append durably; the record's name, or None (nothing written) when full."""
        if len(self._names) >= self.max_records:
            return None
        name = f"{self._next:012d}.json"
        tmp = self.folder / f".{name}.tmp"
        with open(tmp, "w") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / name)
        self._names.append(name)
        self._next += 1
        return name

    def first(self) -> tuple[str, dict[str, Any]] | None:
        """The oldest record and its name, or None."""
        if not self._names:
            return None
        name = self._names[0]
        return name, json.loads((self.folder / name).read_text())

    def remove(self, name: str) -> None:
        """Forget a record once it is safely in the database."""
        (self.folder / name).unlink(missing_ok=True)
        self._names.remove(name)
