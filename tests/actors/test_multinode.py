"""Cameras spread over simulated nodes, and moved when a node goes away.

`ray.cluster_utils.Cluster` runs several real Ray nodes on this machine (loopback), each
declaring a custom resource `xlwatch_node_<name>`; placement pins actors to them. Removing
a node makes `reconcile` restart its cameras on the survivor, whose memory actor reloads
them from the shared data dir (SQLite here; the KV store for videoxl2).
"""

from __future__ import annotations

import os
import time

import pytest

from pipeline.placement import Slot
from pipeline.wiring import cipher, database
from storage import repo
from tests.actors.conftest import make_cfg
from tests.conftest import VTEST
from tests.e2e.clips import cut_clip

pytestmark = pytest.mark.slow
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    from pipeline.app.orchestrator import export_project_path

    if ray.is_initialized():
        ray.shutdown()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    export_project_path()  # node processes inherit it; their workers import the project
    c = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0})
    nodes = {name: c.add_node(**NODE, resources={f"xlwatch_node_{name}": 1})
             for name in ("a", "b")}
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def chunk_count(cfg, camera):
    with database(cfg).session() as s:
        return len(repo.list_chunks(s, camera))


def test_cameras_spread_over_nodes_and_move_when_a_node_is_removed(cluster, tmp_path):
    import ray

    from pipeline.app.orchestrator import Orchestrator

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    c, nodes = cluster
    clip = cut_clip(VTEST, tmp_path / "clips" / "c.mp4", seconds=16)  # one chunk
    # cam2 loops its file: it stands in for a live camera that must keep running.
    cfg = make_cfg(tmp_path / "data", cameras={"cam2": {"loop": True}})
    with database(cfg).session() as s:
        for name in ("cam1", "cam2"):
            repo.add_camera(s, name, str(clip), cipher(cfg))
    orch = Orchestrator(cfg, ray_address=c.address).start()
    try:
        assert orch.placement == {"cam1": Slot("a"), "cam2": Slot("b")}
        node_of = {n: ray.get(orch.ingest[n].node_id.remote(), timeout=60)
                   for n in ("cam1", "cam2")}
        assert node_of == {"cam1": nodes["a"].node_id, "cam2": nodes["b"].node_id}
        mem_b = ray.get(orch.memory[Slot("b")].node_id.remote(), timeout=60)
        assert mem_b == nodes["b"].node_id
        assert orch.wait_idle("cam1", 120)
        deadline = time.monotonic() + 120
        while chunk_count(cfg, "cam2") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)  # the looped camera has stored a loop and a bit
        before = chunk_count(cfg, "cam2")
        assert before >= 2

        c.remove_node(nodes["b"])
        deadline = time.monotonic() + 60
        while any(n["NodeID"] == nodes["b"].node_id and n["Alive"] for n in ray.nodes()):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        report = orch.reconcile()
        assert report.moved == ["cam2"] and orch.placement["cam2"] == Slot("a")
        assert Slot("b") not in orch.memory
        assert ray.get(orch.ingest["cam2"].node_id.remote(), timeout=60) == nodes["a"].node_id
        held = ray.get(orch.memory[Slot("a")].stats.remote(), timeout=60)["cv"]
        assert held["cam2"]["chunks"] >= before  # reloaded from the shared data dir
        deadline = time.monotonic() + 120
        while chunk_count(cfg, "cam2") <= before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert chunk_count(cfg, "cam2") > before  # ingest continues on node a
        with database(cfg).session() as s:
            seqs = [ch.seq for ch in repo.list_chunks(s, "cam2")]
        assert seqs == sorted(set(seqs))  # no chunk stored twice after the move
    finally:
        orch.stop()
