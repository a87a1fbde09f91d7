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


def test_videoxl2_chunks_prefilled_answer_persisted_and_memory_reloaded_after_restart(
        local_ray, tmp_path):
    import ray

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
        stats = engine_stats(orch, "lobby")
        assert stats["engine"]["chunks_prefilled"] == 2
        assert stats["engine"]["cameras"]["lobby"]["chunks"] == 2
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
        ray.kill(orch.memory[orch.placement["lobby"]], no_restart=False)
        deadline = time.monotonic() + 180
        while True:
            try:
                orch.reconcile()
                stats = engine_stats(orch, "lobby")
                break
            except Exception:  # noqa: BLE001 - restarting: try again
                assert time.monotonic() < deadline
                time.sleep(1.0)
        assert stats["engine"]["chunks_prefilled"] == 0  # a fresh process...
        assert stats["engine"]["cameras"]["lobby"]["chunks"] == 2  # ...with the memory
        again = orch.ask(Question("lobby", "When did a person enter the corridor?"))
        assert again.text == answer.text and again.chunks_used == answer.chunks_used
        # A window with no stored footage is answered as such, from no chunk at all.
        empty = orch.ask(Question("lobby", "Anyone there?", since=1000.0, until=2000.0))
        assert empty.chunks_used == () and "No footage" in empty.text
    finally:
        orch.stop()
