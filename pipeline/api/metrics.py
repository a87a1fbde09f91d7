"""Prometheus metrics for the service, in one registry per process (not the global one,
so tests and several apps in one process do not collide).

Owns the metric names and labels. Counters that the service increments where the work
happens (questions, alerts, chunks) are pushed here; per-camera ingest figures are pulled
at scrape time from a callback returning `CameraStatus` records, because ingest runs in
other processes (Ray actors) that report cumulative counts. It does not serve HTTP: the
API's `/metrics` route renders `Metrics.render()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from pipeline.messages import CameraState, CameraStatus

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
StatusSource = Callable[[], Iterable[CameraStatus]]


class _CameraCollector:
    """Turns the latest CameraStatus of every camera into metric families."""

    def __init__(self) -> None:
        self.source: StatusSource | None = None

    def describe(self):
        return []

    def collect(self):
        frames = {k: CounterMetricFamily(f"xlwatch_frames_{k}", f"Frames {k} per camera",
                                         labels=["camera"])
                  for k in ("decoded", "sampled", "dropped")}
        reconnects = CounterMetricFamily("xlwatch_camera_reconnects",
                                         "Stream reconnects per camera", labels=["camera"])
        state = GaugeMetricFamily("xlwatch_ingest_state",
                                  "1 for the current ingest state of each camera",
                                  labels=["camera", "state"])
        try:
            statuses = list(self.source()) if self.source else []
        except Exception:  # a scrape must not fail because one source is down
            log.exception("camera status source failed during a metrics scrape")
            statuses = []
        for st in statuses:
            frames["decoded"].add_metric([st.camera], st.frames_decoded)
            frames["sampled"].add_metric([st.camera], st.frames_sampled)
            frames["dropped"].add_metric([st.camera], st.frames_dropped)
            reconnects.add_metric([st.camera], st.reconnects)
            for s in CameraState:
                state.add_metric([st.camera, s.value], 1.0 if st.state == s else 0.0)
        yield from frames.values()
        yield reconnects
        yield state


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.chunks_prefilled = Counter("xlwatch_chunks_prefilled", "Chunks prefilled",
                                        ["camera"], registry=r)
        self.questions = Counter("xlwatch_questions", "Questions answered",
                                 ["backend", "outcome"], registry=r)
        self.question_latency = Histogram(
            "xlwatch_question_latency_seconds", "Question latency", ["backend"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.alerts_raised = Counter("xlwatch_alerts_raised", "Alerts committed",
                                     ["camera", "rule"], registry=r)
        self.alerts_delivered = Counter("xlwatch_alerts_delivered",
                                        "Alerts published to the stream", registry=r)
        self.alert_delivery_failures = Counter("xlwatch_alert_delivery_failures",
                                               "Failed relay attempts", registry=r)
        self.relay_backlog = Gauge("xlwatch_relay_backlog",
                                   "Committed alerts not yet delivered", registry=r)
        self._cameras = _CameraCollector()
        r.register(self._cameras)

    def set_camera_source(self, source: StatusSource | None) -> None:
        self._cameras.source = source

    def observe_question(self, backend: str, seconds: float, ok: bool) -> None:
        self.questions.labels(backend, "ok" if ok else "error").inc()
        if ok:
            self.question_latency.labels(backend).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
