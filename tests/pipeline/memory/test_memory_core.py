"""MemoryCore and StepLoop: what the memory actor runs, without Ray.

Real parts: the engine over the tiny random checkpoint (fake weights: the release and a
GPU cannot run here), the real TieredChunkStore on a temp dir, real SQLite. Answers are
meaningless with random weights; the tests check the mechanics the service relies on.
"""

from __future__ import annotations

import threading
import time

import pytest

from model.engine.engine import Engine, EngineConfig
from model.kv.disk import DiskKVStore
from model.kv.policy import GIB, TierConfig
from model.kv.tiered import TieredChunkStore
from pipeline.memory.core import NO_FOOTAGE, MemoryCore
from pipeline.memory.loop import StepLoop
from tests.pipeline.memory.conftest import CAMERAS, make_chunk

QUESTION = ("fight", "Is anyone fighting? Answer yes or no.")


def make_core(tiny_model, db, tmp_path, standing=None, **engine):
    store = TieredChunkStore(TierConfig(gpu_bytes=GIB, host_bytes=GIB, prefill_chunks=1),
                             DiskKVStore(tmp_path / "kv"))
    cfg = EngineConfig(prev_chunks=1, max_headers=4, max_new_tokens=4, **engine)
    core = MemoryCore(db, lambda: Engine(tiny_model, cfg, store), standing)
    for name in CAMERAS:
        core.add_camera(name, "videoxl2")
    return core


def test_one_step_prefills_every_cameras_pending_chunk(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    for name in CAMERAS:
        core.submit(make_chunk(name, 0))
    assert not core.idle() and core.backlog("lobby") == 1
    core.step()
    stats = core.engine.stats()
    assert stats["steps"] == 1 and stats["chunks_prefilled"] == 3
    assert core.idle()
    assert all(core.engine.store.has((name, 0), "coarse") for name in CAMERAS)


def test_a_backlog_of_one_camera_is_prefilled_as_one_window(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path, camera_window=4)
    for seq in range(4):
        core.submit(make_chunk("lobby", seq))
    core.step()
    assert core.engine.stats()["steps"] == 1
    assert core.engine.memories["lobby"].last_seq == 3


def test_standing_questions_of_a_step_are_scored_in_one_batch(tiny_model, db, tmp_path):
    asked = []

    def standing(camera):
        asked.append(camera)
        return [QUESTION] if camera != "door" else []

    core = make_core(tiny_model, db, tmp_path, standing=standing)
    for name in CAMERAS:
        core.submit(make_chunk(name, 0))
    scores = core.step()
    assert sorted(s.camera for s in scores) == ["lobby", "yard"]
    assert core.counters["standing_batches"] == 1
    assert core.engine.counters["standing"] == 2  # one batch of two chunks
    for s in scores:
        assert set(s.scores) == {"fight"} and 0.0 <= s.scores["fight"] <= 1.0
        assert s.seq == 0 and s.thumbnail == f"thumbnails/{s.camera}/chunk-00000000.jpg"
        assert s.wall_time == pytest.approx(1_795_000_000.0)


def test_important_chunks_keep_their_fine_kv_marked(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    core.submit(make_chunk("lobby", 0, important=True))
    core.submit(make_chunk("yard", 0))
    core.step()
    marked = core.engine.store.disk.important
    assert 0 in marked("lobby") and 0 not in marked("yard")


def test_a_replayed_chunk_is_refused_and_counted_not_fatal(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    core.submit(make_chunk("lobby", 0))
    core.step()
    core.submit(make_chunk("lobby", 0))
    core.step()
    assert core.counters["refused"] == 1 and core.engine.stats()["chunks_prefilled"] == 1


def test_ask_maps_a_wall_window_to_chunks_and_says_when_none_is_stored(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    for seq in range(3):
        core.submit(make_chunk("lobby", seq))
        core.step()
    origin = 1_795_000_000.0
    empty = core.ask("lobby", "what happened?", (origin + 1000, origin + 2000), None)
    assert empty.text == NO_FOOTAGE and not empty.chunks_used
    answer = core.ask("lobby", "what happened?", (origin + 17, origin + 20), None)
    assert {seq for seq, _ in answer.chunks_used} == {1}
    whole = core.ask("lobby", "what happened?", None, None)
    assert {seq for seq, _ in whole.chunks_used} == {0, 1, 2}
    assert whole.wall_origin == origin


def test_a_restarted_core_recovers_its_cameras_from_the_disk_tier(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    core.submit(make_chunk("lobby", 0))
    core.step()
    again = make_core(tiny_model, db, tmp_path)
    assert again.engine.memories["lobby"].last_seq == 0
    assert again.add_camera("lobby", "videoxl2")["recovered"] == 1


def test_the_loop_batches_chunks_that_arrive_from_many_threads(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    delivered = []
    loop = StepLoop(core, delivered.append)
    loop.start()

    def arrive() -> None:  # every camera's chunk arrives from its own thread
        threads = [threading.Thread(target=loop.submit, args=(make_chunk(n, 0),))
                   for n in CAMERAS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    loop.call(arrive)  # a call holds the loop between steps, as a question does
    assert all(loop.wait_drained(name, 60) for name in CAMERAS)
    loop.stop()
    assert core.engine.stats()["steps"] == 1 and core.engine.stats()["chunks_prefilled"] == 3
    assert loop.health()["steps"] >= 1 and loop.health()["failures"] == 0


def test_a_file_submit_waits_for_room_and_a_question_runs_between_steps(
        tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path, camera_window=2)
    loop = StepLoop(core, backlog_limit=2).start()
    try:
        for seq in range(6):
            out = loop.submit(make_chunk("lobby", seq), wait_s=60)
            assert out["backlog"] <= 3  # the call returned once the backlog had room
        answer = loop.call(core.ask, "lobby", "what happened?", None, None)
        assert answer.text is not None
        assert loop.wait_drained("lobby", 60)
        assert core.engine.memories["lobby"].last_seq == 5
        assert core.engine.scheduler.dropped.get("lobby", 0) == 0
    finally:
        loop.stop()


def test_chunks_of_a_waiting_file_stay_in_the_mailbox_until_the_engine_has_room(
        tiny_model, db, tmp_path):
    """Several of a file's calls in flight at once (the ingest actor pipelines them) each
    queue their chunk before waiting: more than the engine's per-camera bound arrive
    between two steps. Held ones wait in the mailbox; live ones drop the oldest."""
    core = make_core(tiny_model, db, tmp_path, max_pending=2, camera_window=1)
    for seq in range(5):
        core.submit(make_chunk("lobby", seq), hold=True)
        core.submit(make_chunk("yard", seq))
    assert core.backlog("lobby") == 5
    for _ in range(12):
        core.step()
    assert core.idle()
    assert core.engine.memories["lobby"].last_seq == 4
    assert sorted(core.engine.memories["lobby"].metas) == [0, 1, 2, 3, 4]  # none lost
    assert core.engine.scheduler.dropped.get("lobby", 0) == 0
    assert core.engine.scheduler.dropped["yard"] == 3  # live: bounded, oldest dropped
    assert sorted(core.engine.memories["yard"].metas) == [3, 4]


def test_a_failing_step_is_counted_and_the_loop_keeps_running(tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path)
    calls = {"n": 0}
    real_step = core.step

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA error: out of memory")
        return real_step()

    core.step = flaky
    loop = StepLoop(core).start()
    try:
        loop.submit(make_chunk("lobby", 0))
        # drained, not idle(): a step in progress has taken the chunk from the queue
        assert loop.wait_drained("lobby", 60)
        health = loop.health()
        assert health["alive"] and health["failures"] == 1
        assert "out of memory" in health["last_error"]
        assert core.engine.memories["lobby"].last_seq == 0
    finally:
        loop.stop()


def test_wait_drained_returns_once_the_cameras_chunks_are_prefilled_and_scored(
        tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path, standing=lambda camera: [QUESTION])
    delivered = []
    loop = StepLoop(core, delivered.append).start()
    try:
        for seq in range(3):
            loop.submit(make_chunk("lobby", seq))
        assert loop.wait_drained("lobby", 60)
        assert core.backlog("lobby") == 0
        assert sorted(s.seq for s in delivered) == [0, 1, 2]
    finally:
        loop.stop()


def test_a_question_decodes_while_the_loop_steps_and_answers_as_ask_does(
        tiny_model, db, tmp_path):
    """`call_then`: the memory is read between two steps, the answer decodes beside them.
    While the decoding half is held back, the loop still prefills new chunks; the answer
    equals the one `core.ask` gives over the same memory."""
    core = make_core(tiny_model, db, tmp_path)
    loop = StepLoop(core).start()
    try:
        loop.submit(make_chunk("lobby", 0))
        assert loop.wait_drained("lobby", 60)
        reference = loop.call(core.ask, "lobby", "what happened?", None, None)
        release, stepped_meanwhile = threading.Event(), []

        def decode_later(prepared):
            loop.submit(make_chunk("lobby", 1))  # a new chunk arrives during the decode
            stepped_meanwhile.append(loop.wait_drained("lobby", 60))
            release.wait(60)
            return core.finish_ask(prepared)

        out: list = []
        asker = threading.Thread(target=lambda: out.append(loop.call_then(
            lambda: core.prepare_ask("lobby", "what happened?", None, None), decode_later)))
        asker.start()
        deadline = time.monotonic() + 60
        while not stepped_meanwhile and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stepped_meanwhile == [True]  # prefilled while the question was decoding
        assert core.engine.memories["lobby"].last_seq == 1
        release.set()
        asker.join(60)
        assert out[0].text == reference.text and out[0].chunks_used == reference.chunks_used
    finally:
        loop.stop()


def test_a_question_in_two_halves_answers_over_memory_recovered_after_a_restart(
        tiny_model, db, tmp_path):
    """The two halves the memory actor runs (prepare between steps, finish beside them)
    answer over a memory recovered from the disk tier as `ask` did before the restart."""
    core = make_core(tiny_model, db, tmp_path)
    for seq in range(2):
        core.submit(make_chunk("lobby", seq))
    core.step()
    reference = core.ask("lobby", "what happened?", None, None)
    again = make_core(tiny_model, db, tmp_path)
    again.add_camera("lobby", "videoxl2")
    answer = again.finish_ask(again.prepare_ask("lobby", "what happened?", None, None))
    assert answer.text == reference.text
    assert {s for s, _ in answer.chunks_used} == {0, 1}


def test_a_profile_covers_the_next_steps_and_says_where_the_loops_time_went(
        tiny_model, db, tmp_path):
    core = make_core(tiny_model, db, tmp_path, standing=lambda camera: [QUESTION])
    loop = StepLoop(core).start()
    try:
        with pytest.raises(ValueError, match="steps"):
            loop.profile(0, 5)
        out: list = []
        profiler = threading.Thread(target=lambda: out.append(loop.profile(2, 120)))
        profiler.start()
        time.sleep(0.2)  # the profile waits for the steps that come next
        with pytest.raises(RuntimeError, match="already running"):
            loop.profile(1, 5)
        for seq in range(2):  # a call holds the loop: each round's chunks step as one
            loop.call(lambda s=seq: [loop.submit(make_chunk(n, s)) for n in CAMERAS])
            assert all(loop.wait_drained(name, 60) for name in CAMERAS)
        profiler.join(120)
        report = out[0]
        assert report["complete"] and report["steps"] == 2 and report["chunks"] == 6
        assert report["loop_s"]["stepping"] > 0 and report["wall_s"] >= report["loop_s"]["stepping"]
        phases = report["phases_s"]
        assert phases["prefill"] > 0 and phases["standing"] > 0 and phases["store"] > 0
        assert "step" in report["by_cumulative"] and "tottime" in report["by_own_time"]
        assert not core._sync and not core.engine.sync_phases  # timed to the GPU no more
        health = loop.health()
        assert health["seconds"]["stepping"] >= report["loop_s"]["stepping"]
        # an idle loop: the profile gives up after its timeout and says so
        idle = loop.profile(1, 0.3)
        assert idle == {"steps": 0, "complete": False, "note": idle["note"]}
    finally:
        loop.stop()
