"""The start-up disk check of recordings: do the cameras' `record.max_gb` fit?

`check_disk_budget` runs before the service starts its cameras. With
`recordings.disk_budget_gb` set, the recording cameras' `record.max_gb` must add up to at
most that (else `DiskBudgetError`, naming both settings), and a budget larger than the
disk can hold is a warning. Without it, the free space of the data dir's disk (plus what
the recordings already hold) is the budget, and going over it is a warning. It deletes
nothing: retention does, per camera.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.record.layout import camera_dir, list_segments

GB = 1e9


class DiskBudgetError(ValueError):
    """The recording cameras' `record.max_gb` exceed `recordings.disk_budget_gb`."""

    field = "recordings.disk_budget_gb"


def check_disk_budget(cfg: Any, cameras: Iterable[str],
                      settings: Callable[[str], Any] | None = None) -> list[str]:
    """Warnings (empty when all fits); raises DiskBudgetError when the budget is set and
    exceeded. `settings(name)`: a camera's effective CameraConfig (default cfg.camera)."""
    settings = settings or cfg.camera
    wants = {name: settings(name).record for name in cameras}
    wants = {name: rec for name, rec in wants.items() if rec.enabled}
    if not wants:
        return []
    total = sum(rec.max_gb for rec in wants.values())
    shown = ", ".join(f"{name} {rec.max_gb:g}" for name, rec in sorted(wants.items()))
    budget = cfg.recordings.disk_budget_gb
    if budget is not None and total > budget:
        raise DiskBudgetError(
            f"recordings.disk_budget_gb: the recording cameras' record.max_gb add up to "
            f"{total:g} GB ({shown}), more than the budget; lower record.max_gb or raise "
            f"the budget; got {budget:g}")
    data_dir = Path(cfg.data_dir)
    used = sum(seg.size for name in wants
               for seg in list_segments(camera_dir(data_dir, name))) / GB
    free = _free_gb(data_dir)
    room = free + used
    need = budget if budget is not None else total
    if need <= room:
        return []
    setting = "recordings.disk_budget_gb" if budget is not None else "record.max_gb"
    return [f"{setting}: recordings may grow to {need:g} GB ({shown}) but the disk of "
            f"{data_dir} has room for {room:.1f} GB (free {free:.1f} + recorded "
            f"{used:.1f}); retention keeps each camera under its record.max_gb, the disk "
            "may fill first"]


def _free_gb(path: Path) -> float:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / GB


def check_service_budget(cfg: Any, db: Any) -> list[str]:
    """`check_disk_budget` over the cameras stored in the database, each with its own
    settings (the config's and the row's)."""
    from pipeline.wiring import camera_settings
    from storage import repo

    with db.session() as s:
        rows = [row for row in repo.list_cameras(s) if row.enabled]
    by_name = {row.name: camera_settings(cfg, row) for row in rows}
    return check_disk_budget(cfg, by_name, by_name.__getitem__)
