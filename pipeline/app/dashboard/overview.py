"""What the dashboard shows about the service's parts, read from the service's own
`/health` record: each part's state for the admin page, and the memory each camera holds
for the camera cards. Pure functions of that record (no calls, no Ray); they tolerate
parts that are absent (the API over the database alone has no actors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Part:
    name: str
    ok: bool | None  # None: not known
    detail: str = ""


def _memory_parts(service: dict[str, Any]) -> list[Part]:
    out = []
    stats = service.get("memory_stats") or {}
    for slot, alive in sorted((service.get("memory") or {}).items()):
        loop = (stats.get(slot) or {}).get("loop") or {}
        detail = f"{loop.get('steps', 0)} steps, {loop.get('failures', 0)} failures"
        if loop.get("last_error"):
            detail += f"; last error: {loop['last_error']}"
        recovery = (service.get("kv_recovery_point") or {}).get(slot)
        if recovery:
            detail += f"; KV on disk through {recovery}"
        out.append(Part(f"memory {slot}", bool(alive) and loop.get("alive", True), detail))
    return out


def health_parts(health: dict[str, Any]) -> list[Part]:
    """Every part, in the order an operator checks them."""
    db = health.get("database") or {}
    parts = [Part("database", db.get("ok"), str(db.get("url", "")))]
    if "redis" in health:
        parts.append(Part("redis", (health.get("redis") or {}).get("ok")))
    parts.append(Part("query backend", health.get("query_backend"),
                      "" if health.get("query_backend") else "questions cannot be answered"))
    service = health.get("service")
    if not isinstance(service, dict):
        return parts
    if "error" in service:
        return [*parts, Part("service", False, str(service["error"]))]
    parts.append(Part("alert relay", service.get("alerts")))
    errors = service.get("alert_rule_errors") or []
    parts.append(Part("alert rules", not errors, "; ".join(str(e) for e in errors)))
    parts.extend(_memory_parts(service))
    placement = service.get("placement") or {}
    for camera, alive in sorted((service.get("cameras") or {}).items()):
        where = placement.get(camera)
        parts.append(Part(f"ingest {camera}", bool(alive), f"memory on {where}" if where else ""))
    return parts


def memory_by_camera(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{camera: {"slot", "chunks", "pending", "dropped"}} from the memory actors' stats."""
    service = health.get("service") if isinstance(health.get("service"), dict) else {}
    out: dict[str, dict[str, Any]] = {}
    for slot, stats in ((service or {}).get("memory_stats") or {}).items():
        if not isinstance(stats, dict):
            continue
        for camera, v in (stats.get("cv") or {}).items():
            out[camera] = {"slot": slot, "chunks": v.get("chunks", 0)}
        for camera, v in ((stats.get("engine") or {}).get("cameras") or {}).items():
            out[camera] = {"slot": slot, "chunks": v.get("chunks", 0),
                           "pending": v.get("pending", 0), "dropped": v.get("dropped", 0)}
    return out
