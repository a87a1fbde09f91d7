"""A driver that dies leaves its detached actors running; the next driver adopts them.

Real parts only: a Ray head started by `ray.cluster_utils.Cluster` on 127.0.0.1 (it
outlives the drivers, as a KubeRay head outlives the service pod), a first driver in a
subprocess that starts the orchestrator and is then SIGKILLed (a crash: no clean stop),
SQLite in a temp data dir and a looped clip cut from vtest.avi standing in for a live
camera. While no driver runs, the camera keeps ingesting; the second driver (this test
process) finds the same actors by name and adopts them: no second ingest actor, no chunk
stored twice. Its clean stop stops them all, unless `ray.on_exit: keep` says otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pipeline.config import load_config
from pipeline.placement import Slot
from pipeline.wiring import cipher, database
from storage import repo
from tests.conftest import VTEST
from tests.e2e.clips import cut_clip

pytestmark = pytest.mark.slow
RAY_TIMEOUT_S = 60

# The first driver: start the orchestrator, print every actor's name and id, then wait
# to be killed (it never stops its actors).
DRIVER = """
import json, sys, time
from pipeline.app.orchestrator import Orchestrator
from pipeline.config import load_config
orch = Orchestrator(load_config(sys.argv[1], env={}), ray_address=sys.argv[2]).start()
from tests.actors.test_driver_restart import actor_ids
print("READY " + json.dumps(actor_ids(orch)), flush=True)
while True:
    time.sleep(1)
"""


def actor_ids(orch) -> dict[str, str]:
    """Role -> Ray actor id of every actor the orchestrator holds."""
    out = {"alerts": orch.alerts._actor_id.hex()}
    out.update({f"query{i}": h._actor_id.hex() for i, h in enumerate(orch.queries)})
    out.update({f"memory:{s.key}": h._actor_id.hex() for s, h in orch.memory.items()})
    out.update({f"ingest:{c}": h._actor_id.hex() for c, h in orch.ingest.items()})
    return out


@pytest.fixture(scope="module")
def head():
    import ray
    from ray.cluster_utils import Cluster

    from pipeline.app.orchestrator import export_project_path

    if ray.is_initialized():
        ray.shutdown()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    export_project_path()  # the head's workers import the project from this checkout
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    yield c
    ray.shutdown()
    c.shutdown()


def chunk_seqs(cfg, camera) -> list[int]:
    with database(cfg).session() as s:
        return [ch.seq for ch in repo.list_chunks(s, camera)]


def wait_for(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def requested() -> tuple[float, float]:
    """(CPUs, memory bytes) the cluster's actors hold, from Ray's own accounting."""
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()
    return (round(total["CPU"] - free.get("CPU", 0), 6),
            total["memory"] - free.get("memory", 0))


def ours(orch) -> list[str]:
    return orch._our_actors()


def write_cfg(tmp_path, **ray_extra):
    path = tmp_path / "config.yaml"
    data = {"data_dir": str(tmp_path / "data"),
            "allowed_roots": [str(tmp_path)],
            # quick chunks: 16 frames at 4 fps are one chunk every 4 s of the looped clip
            "cameras": {"cam": {"loop": True, "fps": 4}},
            "alerts": {"cooldown_s": 0, "rules": [{"name": "person-any", "kind": "person"}]},
            "ray": {"service_id": "restart-test", **ray_extra}}
    path.write_text(yaml.safe_dump(data))
    return path


def start_first_driver(cfg_path, address) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(cfg_path), address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("READY "):
            return proc, json.loads(line[len("READY "):])
    proc.kill()
    raise AssertionError("the first driver did not start:\n" + "".join(lines[-60:]))


def test_a_restarted_driver_adopts_the_running_actors_and_ingest_never_stops(head, tmp_path):
    from pipeline.app.orchestrator import Orchestrator

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    clip = cut_clip(VTEST, tmp_path / "clips" / "cam.mp4", seconds=8)
    cfg_path = write_cfg(tmp_path)
    cfg = load_config(cfg_path, env={})
    with database(cfg).session() as s:
        repo.add_camera(s, "cam", str(clip), cipher(cfg))

    proc, first = start_first_driver(cfg_path, head.address)
    try:
        assert set(first) == {"alerts", "query0", "query1", "memory:local/cpu", "ingest:cam"}
        wait_for(lambda: chunk_seqs(cfg, "cam"), 120, "a first chunk")
        proc.send_signal(signal.SIGKILL)  # a crash: no clean stop, no finally
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()

    # No driver: the detached actors keep the camera going.
    before = len(chunk_seqs(cfg, "cam"))
    wait_for(lambda: len(chunk_seqs(cfg, "cam")) > before, 120, "a chunk with no driver")

    orch = Orchestrator(cfg, ray_address=head.address).start()
    try:
        assert actor_ids(orch) == first  # the very same actors, none started anew
        assert sorted(n.split(".")[2] for n in orch.adopted) == [
            "alerts", "ingest", "memory", "query", "query"]
        assert orch.placement == {"cam": Slot("local")}
        ingest = [n for n in ours(orch) if ".ingest.cam." in n]
        assert len(ingest) == 1, ingest  # one camera, one ingest actor
        report = orch.reconcile()
        assert report.added == report.restarted == report.moved == report.removed == []
        assert actor_ids(orch) == first
        during = len(chunk_seqs(cfg, "cam"))
        wait_for(lambda: len(chunk_seqs(cfg, "cam")) > during, 120,
                 "a chunk after the adoption")
        seqs = chunk_seqs(cfg, "cam")
        assert seqs == sorted(set(seqs))  # the camera was never ingested twice
        assert all(orch.health()["memory"].values())
        # Real requests (ray.<role> defaults): 0.1 CPU each for two query actors, the
        # alert actor, the memory actor and the camera's ingest actor, and their memory.
        wait_for(lambda: requested() == (0.5, (2 * 512 + 256 + 512 + 384) * 2**20), 30,
                 f"the actors' resource requests; got {requested()}")
    finally:
        orch.stop()  # a clean stop stops the adopted actors too
    wait_for(lambda: not ours(orch), 60, "the actors to be stopped by the clean stop")


def test_a_clean_stop_keeps_the_actors_with_on_exit_keep_and_a_new_config_replaces_them(
        head, tmp_path):
    from pipeline.app.orchestrator import Orchestrator

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    clip = cut_clip(VTEST, tmp_path / "clips" / "cam.mp4", seconds=8)
    cfg = load_config(write_cfg(tmp_path, on_exit="keep"), env={})
    with database(cfg).session() as s:
        repo.add_camera(s, "cam", str(clip), cipher(cfg))
    first = Orchestrator(cfg, ray_address=head.address).start()
    ids = actor_ids(first)
    first.stop()  # SIGTERM of a pod: the cameras must go on
    assert len(ours(first)) == len(ids)

    second = Orchestrator(cfg, ray_address=head.address).start()
    try:
        assert actor_ids(second) == ids
    finally:
        second.stop(keep_actors=True)

    # The camera's fps changed while no driver ran: only its ingest actor is replaced.
    with database(cfg).session() as s:
        repo.update_camera(s, "cam", fps=2)
    third = Orchestrator(cfg, ray_address=head.address).start()
    try:
        now = actor_ids(third)
        assert now["ingest:cam"] != ids["ingest:cam"]
        assert {k: v for k, v in now.items() if k != "ingest:cam"} == {
            k: v for k, v in ids.items() if k != "ingest:cam"}
        wait_for(lambda: len([n for n in ours(third) if ".ingest.cam." in n]) == 1, 60,
                 "one ingest actor for the camera")
        ids = now
    finally:
        third.stop(keep_actors=True)

    # Another config (the memory budget changed): the old actors are
    # stopped and a fresh set started, never two sets at once.
    changed = cfg.model_copy(update={"memory": cfg.memory.model_copy(update={"host_gib": 4})})
    fourth = Orchestrator(changed, ray_address=head.address).start()
    try:
        assert fourth.adopted == []
        new = actor_ids(fourth)
        assert not set(new.values()) & set(ids.values())
        wait_for(lambda: len(ours(fourth)) == len(new), 60, "the old set to be stopped")
    finally:
        fourth.stop(keep_actors=False)
    wait_for(lambda: not ours(fourth), 60, "every actor to be stopped")
