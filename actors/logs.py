"""Logging inside actor processes: INFO and up, one line each with the logger's name.

Each actor calls `worker_logging()` first. Ray streams a worker's output to the driver
when the orchestrator asks it to (`xlwatch serve` does), so reconnects, outages, rule
errors and drops reach the service's own log and `docker logs`, prefixed with the actor.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(levelname)s %(name)s: %(message)s"


def worker_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_xlwatch", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._xlwatch = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
