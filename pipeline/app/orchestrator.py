"""Orchestrator: the one place that applies `ray.remote` and owns the actors' lifecycle.

It starts (or joins) Ray, starts the parts in dependency order from one list (storage,
memory actors, query pool, alert actor, ingest actors) and stops them in reverse;
`reconcile()` compares the cameras in the database with the running ingest actors and
the live nodes (add, remove, restart, move), using `pipeline.placement.place` for the
decision; Ray's own restart options (max_restarts, max_task_retries) restart an actor
that dies, and a restarted actor reloads its cameras from the disk store and database.
It does not answer questions or evaluate rules itself: the actors' cores do.

Every actor is detached and named in the Ray namespace: `xlwatch-<service id>.<config
tag>.<role>...` (the service id comes from the database, the tag from the config the
actors were built with). A driver that crashed or lost its connection leaves its actors
running (cameras keep ingesting, alerts keep firing); the next driver of the same service
adopts them instead of starting a second set: actors of the same config are taken over
as they are, those of another config are stopped first. A clean stop (`stop()`, SIGTERM
or Ctrl-C of `xlwatch serve`) stops every actor, unless the driver joined a cluster with
`ray.on_exit: keep` (the KubeRay Deployment: a pod restart must not stop the cameras).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from actors.alert_actor import AlertActor
from actors.ingest_actor import IngestActor
from actors.memory_actor import MemoryActor
from actors.query_actor import QueryActor
from pipeline.messages import Answer, CameraState, CameraStatus, Question
from pipeline.placement import CameraDemand, NodeSpec, Slot, place_partial
from pipeline.validation import mask_text
from pipeline.wiring import CameraPlan, backend_of, database, desired_cameras, settings_of
from storage import repo
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

NAMESPACE = "xlwatch"
NODE_RESOURCE_PREFIX = "xlwatch_node_"
RPC_TIMEOUT_S = 60.0
SWEEP_INTERVAL_S = 600.0

# ray.remote is applied here and nowhere else (DESIGN.md section 2).
IngestRemote = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=0)(IngestActor)
# Several threads: chunks keep arriving (on_chunk only queues) while a question runs.
MemoryRemote = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=2,
                          max_concurrency=16)(MemoryActor)
QueryRemote = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=2)(QueryActor)
AlertRemote = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=2)(AlertActor)


def init_ray(address: str | None = None, num_cpus: int | None = None,
             namespace: str = NAMESPACE, worker_logs: bool = False) -> None:
    """Join `address` explicitly, or start a private loopback-only Ray instance."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    export_project_path()
    if address:
        ray.init(address=address, namespace=namespace, log_to_driver=worker_logs,
                 logging_level=logging.ERROR)
    else:
        # address="local": always a new Ray of our own, never one `ray start` left running
        # on this machine (ray.init() alone would join that).
        ray.init(address="local", num_cpus=num_cpus or max(2, os.cpu_count() or 2),
                 include_dashboard=False,
                 _node_ip_address="127.0.0.1", namespace=namespace, log_to_driver=worker_logs,
                 logging_level=logging.ERROR)  # Ray's own start-up chatter off the console


def export_project_path() -> None:
    """Workers of a Ray we start inherit our environment: let them import the project
    when it runs from a checkout rather than an installed package."""
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])


def service_prefix(cfg: Any) -> str:
    """`xlwatch-<id>`: `ray.service_id`, else a digest of where the database lives (the
    data dir and the database URL, credentials masked): one service per database, so a
    restarted driver finds its actors and services on other databases never do."""
    if cfg.ray.service_id:
        return f"xlwatch-{cfg.ray.service_id}"
    where = f"{Path(cfg.data_dir).resolve()}|{mask_text(cfg.db_url or '')}"
    return f"xlwatch-{hashlib.sha256(where.encode()).hexdigest()[:10]}"


def config_tag(cfg: Any) -> str:
    """A digest of the config the actors are built with (without what only the driver
    reads: the API and how it joins or leaves Ray): actors of another tag are replaced."""
    data = cfg.model_dump_json(exclude={"api": True, "ray": {"address", "on_exit"}})
    secrets = f"{cfg.secret or ''}|{cfg.redis_url or ''}"
    return hashlib.sha256(f"{data}|{secrets}".encode()).hexdigest()[:8]


def settings_tag(plan: CameraPlan) -> str:
    """A camera's settings (backend, fps) in its ingest actor's name."""
    return hashlib.sha256(repr(plan.settings_key).encode()).hexdigest()[:6]


def actor_resources(res: Any) -> dict:
    """Ray options for one `ray.<role>` section: logical CPUs and memory (bytes)."""
    out: dict[str, Any] = {"num_cpus": res.num_cpus}
    if res.memory_mb:
        out["memory"] = res.memory_mb * 1024 * 1024
    return out


def discover_nodes(cameras_per_device: float) -> list[NodeSpec]:
    """Live nodes that declare an `xlwatch_node_<name>` resource, else the local node."""
    nodes: list[NodeSpec] = []
    local_gpus = 0
    for info in ray.nodes():
        if not info.get("Alive"):
            continue
        res = info.get("Resources", {})
        local_gpus = max(local_gpus, int(res.get("GPU", 0)))
        for key in res:
            if key.startswith(NODE_RESOURCE_PREFIX):
                nodes.append(NodeSpec(key[len(NODE_RESOURCE_PREFIX):], int(res.get("GPU", 0)),
                                      cameras_per_device, key))
    if not nodes:
        nodes = [NodeSpec("local", local_gpus, cameras_per_device)]
    return sorted(nodes, key=lambda n: n.name)


@dataclass
class ReconcileReport:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # no slot has room: they wait


class Orchestrator:
    def __init__(self, cfg: Any, ray_address: str | None = None,
                 worker_logs: bool = False) -> None:
        self.cfg = cfg
        self._ray_address = ray_address
        self._worker_logs = worker_logs  # actors' log lines to this process's output
        self._lock = threading.RLock()
        # Reconciles asked for and run: concurrent asks (operators adding cameras at
        # once) share one round instead of queueing a full round each.
        self._rounds_lock = threading.Lock()
        self._rounds_asked = self._rounds_done = 0
        self._last_report: ReconcileReport | None = None
        self.db = None
        self.memory: dict[Slot, Any] = {}
        self.queries: list[Any] = []
        self.alerts: Any = None
        self.ingest: dict[str, Any] = {}
        self.placement: dict[str, Slot] = {}
        self.plans: dict[str, CameraPlan] = {}  # the wanted cameras of the last reconcile
        self.unplaced: dict[str, str] = {}  # wanted cameras no slot has room for: why
        self._rr = itertools.count()
        # Actor names: one prefix per service (database), one tag per config; several
        # services may share one Ray (tests), a restarted driver finds its own.
        self._prefix = service_prefix(cfg)
        self._tag = f"{self._prefix}.{config_tag(cfg)}"
        self._found: set[str] = set()  # our actors' names alive at start: adopted
        self.adopted: list[str] = []
        # Stopped in reverse: ingest, then the memory (its last steps' standing scores
        # still reach the alert actor), then questions, then alerts.
        self._parts = [
            ("storage", self._start_storage, self._stop_storage),
            ("alerts", self._start_alerts, self._stop_alerts),
            ("query", self._start_queries, self._stop_queries),
            ("memory", self._start_memory, self._stop_memory),
            ("ingest", self._start_ingest, self._stop_ingest),
        ]
        self._started: list[str] = []
        self._loop_stop = threading.Event()
        self._loop: threading.Thread | None = None

    # Lifecycle: one list, started in order, stopped in reverse.
    def start(self) -> Orchestrator:
        init_ray(self._ray_address, self.cfg.ray.num_cpus, self.cfg.ray.namespace,
                 self._worker_logs)
        self._retire_stale()
        self._found = set(self._our_actors())
        if self._found:
            log.warning("adopting %d actors a previous driver left running", len(self._found))
        for name, start, _ in self._parts:
            log.info("starting %s", name)
            start()
            self._started.append(name)
        return self

    def stop(self, keep_actors: bool | None = None) -> None:
        """Stop every actor, in reverse order. `keep_actors` (default: `ray.on_exit` is
        "keep" and the driver joined a cluster) leaves them running for the next driver."""
        if keep_actors is None:
            keep_actors = self.cfg.ray.on_exit == "keep" and bool(self._ray_address)
        self.stop_reconcile_loop()
        if keep_actors:
            log.warning("leaving %d cameras' actors running for the next driver "
                        "(ray.on_exit: keep)", len(self.ingest))
            self.memory, self.queries, self.alerts, self.ingest = {}, [], None, {}
            self.placement.clear()
            self._started.clear()
            return
        for name, _, stop in reversed(self._parts):
            if name in self._started:
                try:
                    stop()
                except Exception:  # noqa: BLE001 - keep stopping the rest
                    log.exception("stopping %s failed", name)
                self._started.remove(name)

    def _start_storage(self) -> None:
        self.db = database(self.cfg)

    def _stop_storage(self) -> None:
        self.db = None

    # Adoption: the actors a previous driver of this service left running.
    def _our_actors(self, tag: str | None = None) -> list[str]:
        """Names of this service's live named actors (of one config tag when given)."""
        head = f"{tag or self._prefix}."
        return sorted(n for n in ray.util.list_named_actors() if n.startswith(head))

    def _adopt(self, name: str) -> Any:
        """The live actor `name` if a previous driver left it, else None."""
        if name not in self._found:
            return None
        try:
            handle = ray.get_actor(name)
        except ValueError:  # it died since the listing
            return None
        self.adopted.append(name)
        return handle

    def _retire_stale(self) -> None:
        """Actors of this service built from another config: stopped (ingest first, the
        memory's KV writes flushed), so that this driver starts them afresh."""
        stale = [n for n in self._our_actors() if not n.startswith(f"{self._tag}.")]
        if not stale:
            return
        log.warning("stopping %d actors of this service left with another config", len(stale))
        for role in (".ingest.", ".memory.", ".query.", ".alerts"):
            handles = []
            for name in [n for n in stale if role in n]:
                try:
                    handles.append(ray.get_actor(name))
                except ValueError:
                    continue
            stopping = [h.stop.remote() for h in handles if role != ".query."]
            if stopping:
                ray.wait(stopping, num_returns=len(stopping), timeout=RPC_TIMEOUT_S)
            for handle in handles:
                ray.kill(handle, no_restart=True)

    def _create(self, remote: Any, name: str, opts: dict, *args: Any) -> Any:
        """A detached actor named `name`; waits briefly while the name of one just killed
        is still taken."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return remote.options(name=name, lifetime="detached", **opts).remote(*args)
            except ValueError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _start_memory(self) -> None:
        """Adopt the memory actors of live slots and the cameras they hold (new ones are
        created per used slot by `reconcile`)."""
        nodes = discover_nodes(self.cfg.ray.cameras_per_device)
        for slot in (Slot(n.name, d) for n in nodes for d in n.devices()):
            handle = self._adopt(self.memory_name(slot))
            if handle is None:
                continue
            self.memory[slot] = handle
            for camera in ray.get(handle.cameras.remote(), timeout=RPC_TIMEOUT_S):
                self.placement[camera] = slot

    def _stop_memory(self) -> None:
        refs = [h.stop.remote() for h in self.memory.values()]  # flush KV writes first
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=RPC_TIMEOUT_S)
        for handle in self.memory.values():
            ray.kill(handle, no_restart=True)
        self.memory.clear()
        self.placement.clear()  # a later start() places every camera afresh

    def _start_queries(self, size: int = 2) -> None:
        opts = actor_resources(self.cfg.ray.query)
        for i in range(size):
            name = f"{self._tag}.query.{i}"
            self.queries.append(self._adopt(name)
                                or self._create(QueryRemote, name, opts, self.cfg))

    def _stop_queries(self) -> None:
        for handle in self.queries:
            ray.kill(handle, no_restart=True)
        self.queries = []

    def _start_alerts(self) -> None:
        self.alerts = self._adopt(self.alerts_name) or self._create(
            AlertRemote, self.alerts_name, actor_resources(self.cfg.ray.alerts), self.cfg)

    def _start_ingest(self) -> None:
        """Adopt the ingest actors whose camera is still wanted with the same settings and
        whose memory was adopted (one per camera); stop the others; then reconcile."""
        nodes = discover_nodes(self.cfg.ray.cameras_per_device)
        wanted, _ = desired_cameras(self.cfg, self.db, has_gpu=any(n.gpus for n in nodes))
        for name in sorted(n for n in self._found if n.startswith(f"{self._tag}.ingest.")):
            camera, tag = name.split(".")[3:5]
            plan = wanted.get(camera)
            keep = (plan is not None and tag == settings_tag(plan) and plan.run_ingest
                    and camera in self.placement and camera not in self.ingest)
            handle = self._adopt(name) if keep else None
            if handle is not None:
                self.ingest[camera] = handle
                self.plans[camera] = plan
                continue
            log.info("camera %s: not adopting ingest actor %s", camera, name)
            try:
                stale = ray.get_actor(name)
            except ValueError:
                continue
            try:
                ray.get(stale.stop.remote(), timeout=RPC_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a dead actor cannot stop; kill below
                log.warning("camera %s: ingest actor %s did not stop cleanly", camera, name)
            ray.kill(stale, no_restart=True)
            if plan is not None and camera in self.placement and camera not in self.ingest:
                self._remove_camera(camera, deleted=False)  # settings changed: afresh
        self.reconcile()

    def _stop_alerts(self) -> None:
        if self.alerts is not None:
            try:
                ray.get(self.alerts.stop.remote(), timeout=RPC_TIMEOUT_S)
            finally:
                ray.kill(self.alerts, no_restart=True)
                self.alerts = None

    def _stop_ingest(self) -> None:
        refs = [h.stop.remote() for h in self.ingest.values()]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=RPC_TIMEOUT_S)
        for handle in self.ingest.values():
            ray.kill(handle, no_restart=True)
        self.ingest.clear()

    # Reconciliation: database cameras x live nodes -> actors.
    def reconcile(self) -> ReconcileReport:
        """Make the actors match the database and the live nodes; idempotent. A caller
        whose ask a round that started after it already covered gets that round's report
        (a round reads the database afresh, so it sees every change made before it)."""
        with self._rounds_lock:
            self._rounds_asked += 1
            mine = self._rounds_asked
        with self._lock:
            if self._rounds_done >= mine and self._last_report is not None:
                return self._last_report
            with self._rounds_lock:
                covers = self._rounds_asked
            report = self._reconcile_round()
            self._rounds_done, self._last_report = covers, report
            return report

    def _reconcile_round(self) -> ReconcileReport:
        with self._lock:
            report = ReconcileReport()
            nodes = discover_nodes(self.cfg.ray.cameras_per_device)
            wanted, in_db = desired_cameras(self.cfg, self.db,
                                            has_gpu=any(n.gpus for n in nodes))
            for name in sorted(set(wanted) & set(self.placement)):
                old = self.plans.get(name)
                if old is not None and old.settings_key != wanted[name].settings_key:
                    # fps or backend changed (camera update, PATCH /cameras): start afresh
                    log.info("camera %s: settings changed; restarting it", name)
                    self._remove_camera(name, deleted=False)
                    report.restarted.append(name)
            self.plans = dict(wanted)
            demands = [CameraDemand(n, needs_gpu=p.needs_gpu) for n, p in wanted.items()]
            new_place, unplaced = place_partial(demands, nodes, self.placement)
            self._note_unplaced(unplaced)
            report.unplaced = sorted(unplaced)
            live_slots = {Slot(n.name, d) for n in nodes for d in n.devices()}
            for slot in [s for s in self.memory if s not in live_slots]:
                ray.kill(self.memory.pop(slot), no_restart=True)  # its node is gone
            for name in sorted(set(self.placement) - set(new_place)):
                self._remove_camera(name, deleted=name not in in_db)
                if name not in unplaced:  # else it waits for room (its node went away)
                    report.removed.append(name)
            dead = self._dead_ingest()
            loads = []  # memory reloads run in parallel; ingest starts once they are done
            for name in sorted(new_place):
                slot, old = new_place[name], self.placement.get(name)
                if old is not None and old != slot:
                    self._stop_camera_ingest(name)
                    report.moved.append(name)
                if old != slot:
                    loads.append(self._memory_for(slot, nodes).add_camera.remote(
                        name, wanted[name].backend))
                    if old is None:
                        report.added.append(name)
                self.placement[name] = slot
            if loads:
                ray.get(loads, timeout=RPC_TIMEOUT_S * max(1, len(loads) // 8))
            for name, plan in sorted(wanted.items()):
                if name not in new_place:
                    continue
                slot = self.placement[name]
                if name in dead:
                    self._stop_camera_ingest(name)
                    report.restarted.append(name)
                if plan.run_ingest and name not in self.ingest:
                    self._start_camera_ingest(name, slot, nodes, plan)
                elif not plan.run_ingest and name in self.ingest:
                    self._stop_camera_ingest(name)  # a file read to its end
            self._reload_restarted_memory()
            return report

    def _note_unplaced(self, unplaced: dict[str, str]) -> None:
        """Say once, in the log and the camera's row, that a camera waits for room."""
        unsaid = set()
        for name in sorted(set(unplaced) - set(self.unplaced)):
            log.warning("camera %s waits: %s", name, unplaced[name])
            try:
                with self.db.session() as s:
                    repo.set_camera_status(s, name, CameraState.UNPLACED, unplaced[name])
            except Exception:  # noqa: BLE001 - the row is written again next round
                log.warning("camera %s: could not store its unplaced status", name)
                unsaid.add(name)  # said again next round
        for name in sorted(set(self.unplaced) - set(unplaced)):
            log.info("camera %s: placed (room was made)", name)
        self.unplaced = {n: why for n, why in unplaced.items() if n not in unsaid}

    def _dead_ingest(self) -> set[str]:
        """Ingest actors known dead: Ray gave up restarting them, or their reading thread
        died. One that has not answered yet (a new worker process still starting, as
        hundreds do when cameras are added at once) is not dead."""
        return _dead_all(dict(self.ingest))

    def _reload_restarted_memory(self) -> None:
        """A memory actor restarted by Ray only knows its constructor's cameras: re-add.
        One that Ray gave up on is forgotten with its cameras' placement, so the next
        round places them afresh (new memory actor, reload from disk, new ingest)."""
        for slot, handle in list(self.memory.items()):
            expected = {c for c, s in self.placement.items() if s == slot}
            try:
                held = set(ray.get(handle.cameras.remote(), timeout=RPC_TIMEOUT_S))
            except ray.exceptions.ActorDiedError:
                log.error("memory actor %s died for good; re-placing %s", slot.key,
                          sorted(expected))
                self.memory.pop(slot)
                for name in expected:
                    self._stop_camera_ingest(name)
                    self.placement.pop(name, None)
                continue
            except Exception:  # noqa: BLE001 - restarting right now: next round
                continue
            for name in sorted(expected - held):
                ray.get(handle.add_camera.remote(name, self._backend(name)),
                        timeout=RPC_TIMEOUT_S)

    def _start_camera_ingest(self, name: str, slot: Slot, nodes: list[NodeSpec],
                             plan: Any) -> None:
        self._memory_for(slot, nodes)  # exists before ingest sends it chunks
        opts = {**self._affinity(slot, nodes), **actor_resources(self.cfg.ray.ingest)}
        # A new name each time (a replaced actor's name may still be taken for a moment);
        # a restarted driver reads the camera and its settings back from it.
        actor = f"{self._tag}.ingest.{name}.{settings_tag(plan)}.{uuid.uuid4().hex[:6]}"
        self.ingest[name] = self._create(IngestRemote, actor, opts, name, self.cfg,
                                         self.memory_name(slot), self.alerts_name,
                                         plan.needs_memory_frames)

    def _stop_camera_ingest(self, name: str) -> None:
        handle = self.ingest.pop(name, None)
        if handle is None:
            return
        try:
            ray.get(handle.stop.remote(), timeout=RPC_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a dead actor cannot stop; kill below
            log.warning("camera %s: ingest actor did not stop cleanly", name)
        ray.kill(handle, no_restart=True)

    def _remove_camera(self, name: str, deleted: bool) -> None:
        """Release a camera; one deleted from the database also loses its KV memory and
        thumbnails (a disabled one keeps them for when it is enabled again)."""
        self._stop_camera_ingest(name)
        slot = self.placement.pop(name, None)
        if slot in self.memory:
            self.memory[slot].drop_camera.remote(name, deleted)
        if deleted:
            shutil.rmtree(Path(self.cfg.data_dir) / "thumbnails" / name, ignore_errors=True)

    def _backend(self, camera: str) -> str:
        plan = self.plans.get(camera)
        if plan is not None:
            return plan.backend
        return backend_of(self.cfg, settings_of(self.cfg, self.db, camera))

    @property
    def alerts_name(self) -> str:
        return f"{self._tag}.alerts"

    def memory_name(self, slot: Slot) -> str:
        return f"{self._tag}.memory.{slot.key.replace('/', '-')}"

    def _memory_for(self, slot: Slot, nodes: list[NodeSpec]) -> Any:
        if slot not in self.memory:
            opts = {**self._affinity(slot, nodes), **actor_resources(self.cfg.ray.memory)}
            if slot.device is not None:
                opts["num_gpus"] = 1
            cams = [(c, self._backend(c)) for c, s in self.placement.items() if s == slot]
            self.memory[slot] = self._create(MemoryRemote, self.memory_name(slot), opts,
                                             slot.key, self.cfg, slot.device, cams,
                                             self.alerts_name)
        return self.memory[slot]

    @staticmethod
    def _affinity(slot: Slot, nodes: list[NodeSpec]) -> dict:
        node = next(n for n in nodes if n.name == slot.node)
        return {"resources": {node.resource: 0.001}} if node.resource else {}

    def run_reconcile_loop(self, interval_s: float = 2.0) -> None:
        """Pick up `camera add/remove` done against the DB, and dead nodes, periodically."""
        def loop() -> None:
            last_sweep = time.monotonic()
            failing = False
            while not self._loop_stop.wait(interval_s):
                try:
                    self.reconcile()
                    if time.monotonic() - last_sweep >= SWEEP_INTERVAL_S:
                        last_sweep = time.monotonic()
                        self.sweep()
                except DatabaseUnavailable as exc:  # an outage: said once, retried quietly
                    if not failing:
                        log.warning("reconcile paused: %s", exc)
                    failing = True
                    continue
                except Exception:  # noqa: BLE001 - report and try again next round
                    log.exception("reconcile failed")
                    continue
                if failing:
                    log.info("reconcile resumed: the database is back")
                failing = False

        self._loop = threading.Thread(target=loop, name="reconcile", daemon=True)
        self._loop.start()

    def sweep(self) -> dict:
        """Retention: expired KV forms in every memory actor's store, and event rows past
        `memory.event_retention_days` (kept forever when it is not set)."""
        refs = [h.sweep.remote() for h in self.memory.values()]
        dropped = sum(ray.get(refs, timeout=RPC_TIMEOUT_S)) if refs else 0
        events = 0
        days = self.cfg.memory.event_retention_days
        if days:
            with self.db.session() as s:
                events = repo.delete_events_before(s, time.time() - days * 86400.0)
        return {"kv_forms_dropped": dropped, "events_deleted": events}

    def stop_reconcile_loop(self) -> None:
        self._loop_stop.set()
        if self._loop is not None:
            self._loop.join(timeout=30)
            self._loop = None

    # Questions and status.
    def ask(self, question: Question, timeout_s: float = 300.0) -> Answer:
        memory = None
        backend = question.backend or self._backend(question.camera)
        if backend == "videoxl2" and question.camera in self.placement:
            memory = self.memory.get(self.placement[question.camera])
        actor = self.queries[next(self._rr) % len(self.queries)]
        try:
            return ray.get(actor.ask.remote(question, memory), timeout=timeout_s)
        except ray.exceptions.RayTaskError as exc:
            # Hand the caller the core's own error (QueryError: field and value), not
            # Ray's wrapper with a remote traceback in its message.
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def camera_status(self, name: str) -> dict | None:
        handle = self.ingest.get(name)
        if handle is None:
            return None
        return ray.get(handle.status.remote(), timeout=RPC_TIMEOUT_S)

    def camera_statuses(self) -> list[CameraStatus]:
        """Every running camera's ingest record, gathered in one round (for /metrics)."""
        refs = [h.camera_status.remote() for h in list(self.ingest.values())]
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=5)
        out = []
        for ref in ready:
            try:
                out.append(ray.get(ref, timeout=1))
            except Exception:  # noqa: BLE001 - an actor restarting: skip it this scrape
                continue
        return out

    def wait_idle(self, name: str, timeout_s: float = 120.0) -> bool:
        handle = self.ingest.get(name)
        if handle is None:
            return True
        return bool(ray.get(handle.wait_idle.remote(timeout_s), timeout=timeout_s + 10))

    def health(self) -> dict:
        started = time.monotonic()
        alert_health = self._alert_health() if self.alerts is not None else None
        out = {
            "parts": list(self._started),
            "cameras": _alive_all(dict(self.ingest)),
            "memory": {s.key: ok for s, ok in _alive_all(dict(self.memory)).items()},
            # the alert actor answers and its relay delivers (False while Redis is down)
            "alerts": bool(alert_health) and bool(alert_health["relay"].get("ok")),
            # alert_rules rows that were skipped, with why (the config's were checked at start)
            "alert_rule_errors": (alert_health or {}).get("rule_errors", []),
            "placement": {n: s.key for n, s in self.placement.items()},
            # What each memory actor holds (reloaded from disk/DB after a move or restart).
            "memory_stats": {s.key: v for s, v in _call_all(dict(self.memory), "stats").items()
                             if v is not None},
            "memory_nodes": {s.key: v for s, v in _call_all(dict(self.memory), "node_id").items()
                             if v is not None},  # the Ray node id each memory actor runs on
        }
        # the newest chunk per camera whose KV a restart gets back (the disk writer's point)
        out["kv_recovery_point"] = {
            slot: ((v.get("kv") or {}).get("writer") or {}).get("recovery_point")
            for slot, v in out["memory_stats"].items() if isinstance(v, dict)}
        out["check_ms"] = round((time.monotonic() - started) * 1000, 1)
        return out

    def profile_memory(self, steps: int, timeout_s: float) -> dict:
        """Every memory actor's loop profiled over its next `steps` steps at once
        (`MemoryActor.profile`): slot -> report, or {"error": ...} for one that failed."""
        answers = _gather(dict(self.memory), "profile", timeout_s + 90.0, steps, timeout_s)
        return {s.key: ({"error": f"{type(a).__name__}: {str(a)[:300]}"}
                        if isinstance(a := answers.get(s), Exception)
                        else a if a is not None else {"error": "no answer"})
                for s in self.memory}

    def _alert_health(self) -> Any:
        try:
            return ray.get(self.alerts.health.remote(), timeout=10)
        except Exception:  # noqa: BLE001
            return None


def _gather(handles: dict[Any, Any], method: str, timeout_s: float, *args: Any
            ) -> dict[Any, Any]:
    """One method of many actors in one round (no ray.get in a loop over slow actors):
    key -> its answer, or the exception it failed with; those that did not answer within
    `timeout_s` are left out."""
    refs = {getattr(h, method).remote(*args): key for key, h in handles.items()}
    if not refs:
        return {}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    out: dict[Any, Any] = {}
    for ref in ready:
        try:
            out[refs[ref]] = ray.get(ref, timeout=1)
        except Exception as exc:  # noqa: BLE001 - the caller decides what a failure means
            out[refs[ref]] = exc
    return out


def _alive_all(handles: dict[Any, Any], timeout_s: float = 10.0) -> dict[Any, bool]:
    """Health of many actors: False for those that failed or did not answer."""
    answers = _gather(handles, "health", timeout_s)
    return {key: not isinstance(a := answers.get(key, False), Exception) and bool(a)
            for key in handles}


def _dead_all(handles: dict[Any, Any], timeout_s: float = 2.0) -> set[Any]:
    """Keys of the actors whose health call answered False or failed with the actor gone
    for good; those restarting (Ray brings them back) or not answering yet are left out."""
    from ray.exceptions import ActorUnavailableError, RayActorError

    return {key for key, a in _gather(handles, "health", timeout_s).items()
            if (not isinstance(a, Exception) and not a)
            or (isinstance(a, RayActorError) and not isinstance(a, ActorUnavailableError))}


def _call_all(handles: dict[Any, Any], method: str, timeout_s: float = 10.0) -> dict[Any, Any]:
    """One method of many actors in one round; None for those that do not answer."""
    answers = _gather(handles, method, timeout_s)
    return {key: None if isinstance(a := answers.get(key), Exception) else a
            for key in handles}
