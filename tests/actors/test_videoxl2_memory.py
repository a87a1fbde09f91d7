"""The videoxl2 backend end to end on CPU through the real actors, with a tiny checkpoint.

Fake only where the real thing cannot run here: the weights are a tiny random checkpoint
(model.tiny) instead of the 16 GB release, so answers are meaningless; the test checks the
mechanics: chunks prefilled by the memory actor's engine, KV written to the disk store,
an answer produced and persisted, and a memory actor restarted by Ray reloading the
camera from the disk store.
"""

from __future__ import annotations

import time

import pytest

from pipeline.messages import Question
from pipeline.wiring import cipher, database
from storage import repo
from tests.actors.conftest import make_cfg
from tests.conftest import VTEST
from tests.e2e.clips import cut_clip

pytestmark = pytest.mark.slow


def engine_stats(orch, camera):
    import ray

    slot = orch.placement[camera]
    return ray.get(orch.memory[slot].stats.remote(), timeout=120)


def restart_memory_actor(orch, camera):
    """Kill the camera's memory actor (Ray restarts it); its stats once it holds the
    camera again (reconcile re-adds it, its memory from the disk)."""
    import ray

    ray.kill(orch.memory[orch.placement[camera]], no_restart=False)
    deadline = time.monotonic() + 180
    while True:
        try:
            orch.reconcile()
            return engine_stats(orch, camera)
        except Exception:  # noqa: BLE001 - restarting: try again
            assert time.monotonic() < deadline
            time.sleep(1.0)


def test_videoxl2_chunks_prefilled_answer_persisted_and_memory_reloaded_after_restart(
        local_ray, tmp_path):

    from model.tiny import make_tiny_checkpoint
    from pipeline.app.orchestrator import Orchestrator

    if not VTEST.exists():
        pytest.skip(f"test footage not found at {VTEST}")
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    clip = cut_clip(VTEST, tmp_path / "clips" / "lobby.mp4", seconds=24)
    cfg = make_cfg(tmp_path / "data", model={"backend": "videoxl2", "path": str(ckpt),
                                            "dtype": "float32"},
                   engine={"max_new_tokens": 8, "token_budget": 4096},
                   alerts={"cooldown_s": 0, "rules": [{
                       "name": "fight", "kind": "standing",
                       "params": {"question": "Is anyone fighting? Answer yes or no.",
                                  "threshold": 0.0}}]})
    with database(cfg).session() as s:
        repo.add_camera(s, "lobby", str(clip), cipher(cfg))
    orch = Orchestrator(cfg).start()
    try:
        assert orch.wait_idle("lobby", 300)
        # a profile through the actor: the file is read, so no step comes; it says so
        (report,) = orch.profile_memory(1, 0.5).values()
        assert report["slot"] and report["complete"] is False and report["steps"] == 0
        stats = engine_stats(orch, "lobby")
        assert stats["engine"]["chunks_prefilled"] == 2
        assert stats["engine"]["cameras"]["lobby"]["chunks"] == 2
        assert stats["engine"]["seconds"]["prefill"] > 0 and stats["loop"]["seconds"]["stepping"] > 0
        kv_files = list((tmp_path / "data" / "kv").rglob("*.safetensors"))
        assert kv_files, "no KV chunk reached the disk store"
        # "finished" waited for the disk writer: a restart gets both chunks back
        point = orch.health()["kv_recovery_point"]
        assert [p.get("lobby") for p in point.values() if p] == [1], point
        with database(cfg).session() as s:
            standing = [a for a in repo.list_alerts(s, after_id=0, camera="lobby")
                        if a.rule == "fight"]
        # threshold 0: every prefilled chunk's P(Yes) raises one alert, with its keyframe
        assert len(standing) == 2
        assert all(0.0 <= a.score <= 1.0 for a in standing)
        assert all(a.thumbnail and (tmp_path / "data" / a.thumbnail).is_file()
                   for a in standing)

        answer = orch.ask(Question("lobby", "When did a person enter the corridor?"))
        assert answer.backend == "videoxl2" and isinstance(answer.text, str)
        assert answer.chunks_used and {s for s, _ in answer.chunks_used} <= {0, 1}
        with database(cfg).session() as s:
            stored = repo.list_queries(s, "lobby")[0]
        assert stored.id == answer.query_id and stored.answer == answer.text
        assert stored.backend == "videoxl2" and stored.chunks_used

        # Kill the memory actor; Ray restarts it (max_restarts) with its constructor's
        # arguments, and reconcile re-adds the camera: its memory comes from the disk.
        stats = restart_memory_actor(orch, "lobby")
        assert stats["engine"]["chunks_prefilled"] == 0  # a fresh process...
        assert stats["engine"]["cameras"]["lobby"]["chunks"] == 2  # ...with the memory
        again = orch.ask(Question("lobby", "When did a person enter the corridor?"))
        assert again.text == answer.text and again.chunks_used == answer.chunks_used
        # A window with no stored footage is answered as such, from no chunk at all.
        empty = orch.ask(Question("lobby", "Anyone there?", since=1000.0, until=2000.0))
        assert empty.chunks_used == () and "No footage" in empty.text
    finally:
        orch.stop()


def still_clip(dst, seconds: int = 24, fps: int = 10):
    """A real MPEG-4 file of one still picture: no motion, no person, so no CV event
    marks its chunks important (their fine KV is never persisted)."""
    import av
    import numpy as np

    dst.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((96, 128, 3), np.uint8)
    img[:, :, 1] = (np.arange(128) * 2) % 256
    img[:, :, 2] = (np.arange(96)[:, None] * 2) % 256
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for _ in range(seconds * fps):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def test_chunks_whose_fine_kv_is_gone_are_read_dense_again_from_the_recording(
        local_ray, tmp_path):
    """After a restart only important chunks' fine KV is on disk; a question that wants
    the others dense gets them prefilled again from the camera's recording, and answers
    as it did before the restart."""

    from model.tiny import make_tiny_checkpoint
    from pipeline.app.orchestrator import Orchestrator

    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    clip = still_clip(tmp_path / "clips" / "hall.mp4")
    cfg = make_cfg(tmp_path / "data", model={"backend": "videoxl2", "path": str(ckpt),
                                            "dtype": "float32"},
                   engine={"max_new_tokens": 8, "token_budget": 4096, "top_k": 2},
                   memory={"persist_fine": "important"},
                   camera_defaults={"record": {"mode": "continuous", "segment_s": 4}})
    with database(cfg).session() as s:
        repo.add_camera(s, "hall", str(clip), cipher(cfg))
    orch = Orchestrator(cfg).start()
    question = "When did a person enter the hall?"
    try:
        assert orch.wait_idle("hall", 300)
        before = orch.ask(Question("hall", question))
        assert dict(before.chunks_used) == {0: "dense", 1: "dense"}  # in the pools
        stats = restart_memory_actor(orch, "hall")
        assert stats["engine"]["cameras"]["hall"]["chunks"] == 2  # coarse, from the disk
        after = orch.ask(Question("hall", question))
        assert dict(after.chunks_used) == {0: "redense", 1: "redense"}
        assert after.text == before.text
        stats = engine_stats(orch, "hall")
        assert stats["counters"]["redensified"] == 2
        assert stats["engine"]["chunks_redensified"] == 2
        assert stats["seconds"]["redense_read"] > 0
        third = orch.ask(Question("hall", question))  # the fine KV is back in the pools
        assert dict(third.chunks_used) == {0: "dense", 1: "dense"}
        assert engine_stats(orch, "hall")["counters"]["redensified"] == 2
    finally:
        orch.stop()
