"""OrchestratorServiceAPI: the HTTP API's `ServiceAPI` backed by the running orchestrator.

Reuses the alerts helper's `DatabaseServiceAPI` for everything the database answers
(cameras, events, alerts) and adds what needs the live service: questions go to the
query actor pool, camera changes trigger a reconcile at once (the periodic reconcile
also picks up changes made with the CLI against the database), camera status merges the
live ingest counters, health includes the actors. It holds no state of its own.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from pipeline.app.api.service_api import DatabaseServiceAPI
from pipeline.messages import Answer, Question

log = logging.getLogger(__name__)


class OrchestratorServiceAPI(DatabaseServiceAPI):
    def __init__(self, orchestrator: Any) -> None:
        super().__init__(orchestrator.db, orchestrator.cfg)
        self.orchestrator = orchestrator
        self.attach_query(self._ask)

    def _ask(self, question: Question) -> Answer:
        return self.orchestrator.ask(question)

    def _reconcile(self) -> None:
        try:
            self.orchestrator.reconcile()
        except Exception:  # noqa: BLE001 - the periodic loop retries; the row is stored
            log.exception("reconcile after a camera change failed")

    def add_camera(self, *args: Any, **kwargs: Any) -> Any:
        out = super().add_camera(*args, **kwargs)
        self._reconcile()
        return out

    def update_camera(self, *args: Any, **kwargs: Any) -> Any:
        out = super().update_camera(*args, **kwargs)
        self._reconcile()  # a changed fps or backend restarts the camera
        return out

    def remove_camera(self, *args: Any, **kwargs: Any) -> Any:
        out = super().remove_camera(*args, **kwargs)
        self._reconcile()
        return out

    def list_cameras(self) -> list[dict[str, Any]]:
        """The rows, each with its live ingest counters while the service runs it (one
        round over the ingest actors, as /metrics gathers them)."""
        rows = super().list_cameras()
        try:
            live = {st.camera: st for st in self.orchestrator.camera_statuses()}
        except Exception:  # noqa: BLE001 - actors restarting: the rows still answer
            log.exception("camera statuses unavailable")
            live = {}
        for row in rows:
            st = live.get(row["name"])
            if st is not None:
                row["ingest"] = {**dataclasses.asdict(st), "state": str(st.state)}
        return rows

    def camera_statuses(self) -> list:
        """Live ingest records of the running cameras (the API's /metrics reads them)."""
        return self.orchestrator.camera_statuses()

    def camera_status(self, name: str) -> Any:
        out = super().camera_status(name)
        try:
            live = self.orchestrator.camera_status(name)
        except Exception as exc:  # noqa: BLE001 - an actor being restarted
            live = {"error": f"{type(exc).__name__}: {exc}"}
        if live is not None and isinstance(out, dict):
            out = {**out, "ingest": live}
        return out

    def profile_memory(self, steps: int, timeout_s: float) -> dict:
        return self.orchestrator.profile_memory(steps, timeout_s)

    def health(self) -> dict:
        out = dict(super().health())
        try:
            out["service"] = self.orchestrator.health()
            out["ok"] = out["ok"] and out["service"]["alerts"]  # the relay delivers
        except Exception as exc:  # noqa: BLE001 - report, never raise from health
            out["service"] = {"error": f"{type(exc).__name__}: {exc}"}
            out["ok"] = False
        return out
