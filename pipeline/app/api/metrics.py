"""Prometheus metrics for the service, in one registry per process (not the global one,
so tests and several apps in one process do not collide).

Owns the metric names and labels. Counters that the service increments where the work
happens in this process (questions) are pushed here; what other processes (Ray actors)
do is pulled at scrape time: per-camera ingest figures from a callback returning
`CameraStatus` records, alert and prefilled-chunk counts from callbacks over the database
(the one place every process's alerts and chunks meet). It does not serve HTTP: the
API's `/metrics` route renders `Metrics.render()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from pipeline.messages import CameraState, CameraStatus

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
StatusSource = Callable[[], Iterable[CameraStatus]]
# Rows of {"camera", "rule", "raised", "delivered"}: alerts committed / published so far.
AlertSource = Callable[[], Iterable[dict]]
# {camera: chunks prefilled into memory (rows in the chunks table)}.
ChunkSource = Callable[[], dict[str, int]]


class _PullCollector:
    """Turns camera statuses and alert counts, read at scrape time, into metric families."""

    def __init__(self) -> None:
        self.source: StatusSource | None = None
        self.alerts: AlertSource | None = None
        self.relayed = True
        self.chunks: ChunkSource | None = None

    def describe(self):
        return []

    def collect(self):
        yield from self._cameras()
        yield from self._alerts()
        if self.chunks is not None:
            prefilled = CounterMetricFamily("xlwatch_chunks_prefilled",
                                            "Chunks prefilled into memory", labels=["camera"])
            for camera, n in (_safe(lambda: self.chunks().items())):
                prefilled.add_metric([camera], n)
            yield prefilled

    def _alerts(self):
        raised = CounterMetricFamily("xlwatch_alerts_raised", "Alerts committed",
                                     labels=["camera", "rule"])
        delivered = CounterMetricFamily("xlwatch_alerts_delivered",
                                        "Alerts published to the stream or webhooks",
                                        labels=["camera", "rule"])
        backlog = GaugeMetricFamily("xlwatch_relay_backlog",
                                    "Committed alerts not yet delivered")
        rows = _safe(self.alerts) if self.alerts else []
        for row in rows:
            raised.add_metric([row["camera"], row["rule"]], row["raised"])
            delivered.add_metric([row["camera"], row["rule"]], row["delivered"])
        backlog.add_metric([], sum(r["raised"] - r["delivered"] for r in rows))
        if not self.alerts:
            return
        # Without a sink (no Redis, no webhook) nothing is ever delivered: no backlog then.
        yield from (raised, delivered, backlog) if self.relayed else (raised, delivered)

    def _cameras(self):
        frames = {k: CounterMetricFamily(f"xlwatch_frames_{k}", f"Frames {k} per camera",
                                         labels=["camera"])
                  for k in ("decoded", "sampled", "dropped")}
        chunks = CounterMetricFamily("xlwatch_chunks_emitted",
                                     "Chunks sent to memory/analysis per camera",
                                     labels=["camera"])
        reconnects = CounterMetricFamily("xlwatch_camera_reconnects",
                                         "Stream reconnects per camera", labels=["camera"])
        state = GaugeMetricFamily("xlwatch_ingest_state",
                                  "1 for the current ingest state of each camera",
                                  labels=["camera", "state"])
        statuses = _safe(self.source) if self.source else []
        for st in statuses:
            frames["decoded"].add_metric([st.camera], st.frames_decoded)
            frames["sampled"].add_metric([st.camera], st.frames_sampled)
            frames["dropped"].add_metric([st.camera], st.frames_dropped)
            chunks.add_metric([st.camera], st.chunks_emitted)
            reconnects.add_metric([st.camera], st.reconnects)
            for s in CameraState:
                state.add_metric([st.camera, s.value], 1.0 if st.state == s else 0.0)
        yield from frames.values()
        yield chunks
        yield reconnects
        yield state


def _safe(source: Callable[[], Iterable]) -> list:
    try:
        return list(source())
    except Exception:  # a scrape must not fail because one source is down; say so
        log.exception("metrics source %r failed during a scrape", source)
        return []


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.questions = Counter("xlwatch_questions", "Questions answered",
                                 ["backend", "outcome"], registry=r)
        self.question_latency = Histogram(
            "xlwatch_question_latency_seconds", "Question latency", ["backend"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self._pull = _PullCollector()
        r.register(self._pull)

    def set_camera_source(self, source: StatusSource | None) -> None:
        self._pull.source = source

    def set_alert_source(self, source: AlertSource | None, relayed: bool = True) -> None:
        """`relayed`: alerts have a sink (Redis, webhooks), so delivery and backlog mean
        something."""
        self._pull.alerts = source
        self._pull.relayed = relayed

    def set_chunk_source(self, source: ChunkSource | None) -> None:
        self._pull.chunks = source

    def observe_question(self, backend: str, seconds: float, ok: bool) -> None:
        self.questions.labels(backend, "ok" if ok else "error").inc()
        if ok:
            self.question_latency.labels(backend).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
