"""RuleSet: the one set of alert rules the service runs.

`evaluator.load_rules` over the config's `alerts` section (its rules, its standing
questions at `anomaly_threshold`) and the enabled `alert_rules` rows, re-read every
RULES_REFRESH_S so a rule added while the service runs takes effect; while the table
cannot be read the rules in hand stay. The alert core evaluates them; the memory actor
scores the standing questions they hold. Without a database, the config's rules alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pipeline.alerts.evaluator import load_rules
from pipeline.alerts.rules import AlertRule

log = logging.getLogger(__name__)
RULES_REFRESH_S = 10.0


class RuleSet:
    """The rules in force: config then table rows; refreshed every `refresh_s`."""

    def __init__(self, alerts_cfg: Any, db: Any, refresh_s: float = RULES_REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg, self._db = alerts_cfg, db
        self._refresh_s, self._clock = refresh_s, clock
        self._rules: list[AlertRule] = []
        self.errors: list[str] = []  # table rows that were skipped, with why
        self._at: float | None = None
        self.version = 0  # bumped whenever the rules were re-read

    def rules(self) -> list[AlertRule]:
        now = self._clock()
        if self._at is None or now - self._at >= self._refresh_s:
            rows = self._table_rows()
            if rows is not None:
                self._rules, self.errors = load_rules(self._cfg, rows)
                self.version += 1
            elif self._at is None:  # nothing read yet: the config's rules alone
                self._rules, _ = load_rules(self._cfg)
                self.version += 1
            self._at = now
        return self._rules

    def _table_rows(self) -> list[Any] | None:
        """The enabled alert_rules rows; None while the database cannot be read."""
        if self._db is None:  # the config's rules alone (benchmarks, no database)
            return []
        from storage import repo  # here: a rule set without a database imports no SQL
        from storage.db import DatabaseUnavailable

        try:
            with self._db.session() as s:
                return repo.list_alert_rules(s, enabled_only=True)
        except DatabaseUnavailable as exc:
            log.warning("alert rules: table not readable (%s); keeping %d rules", exc,
                        len(self._rules))
            return None

    def standing(self, camera: str) -> list[tuple[str, str]]:
        """(rule name, question) pairs each new chunk of `camera` is scored on."""
        return [(r.name, r.params["question"]) for r in self.rules()
                if r.kind == "standing" and r.enabled and r.applies_to(camera)]
