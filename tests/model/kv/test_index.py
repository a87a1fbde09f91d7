"""KVIndex bookkeeping: property-based sequences of events and a few named cases.

Plans are committed right after they are made, standing in for the pools and the disk
store (the index never moves bytes, so nothing else is needed to test it).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.kv.index import KVIndex, Plan, Tier, TierFull
from model.kv.policy import COARSE, FINE, TierConfig

CAMS = ("cam-a", "cam-b")
ORDER = {Tier.GPU: 0, Tier.HOST: 1, Tier.DISK: 2, Tier.COLD: 3, Tier.DROPPED: 4, Tier.LOST: 4}


def make_index(gpu=1000, host=1000, disk=4000, prefill=2, coarse_window=2, cold=False, **kw):
    cfg = TierConfig(gpu_bytes=gpu, host_bytes=host, disk_bytes=disk, prefill_chunks=prefill,
                     gpu_coarse_chunks=coarse_window, fine_ttl_s=100, coarse_ttl_s=1000, **kw)
    return KVIndex(cfg, has_cold=cold)


def apply_checked(index: KVIndex, plan: Plan) -> None:
    """Commit a plan after checking that it moves no pinned chunk down or out."""
    for op in plan.ops:
        if op.kind in ("spill", "drop", "unpersist"):
            assert not index.pinned(op.key), f"plan moves pinned chunk: {op}"
    before = {(op.key, op.form): index.entry(op.key, op.form).tier for op in plan.ops
              if index.entry(op.key, op.form) is not None}
    for op in plan.ops:  # one op at a time, as TieredChunkStore commits them
        index.commit(Plan((op,)))
    for (key, form), tier in before.items():
        e = index.entry(key, form)
        if index.pinned(key) and e is not None:
            assert ORDER[e.tier] <= ORDER[tier], (key, form, tier, e.tier)
    index.check_integrity()


_add = st.tuples(st.just("add"), st.sampled_from(CAMS), st.sampled_from((FINE, COARSE)),
                 st.integers(0, 300))
actions = st.lists(
    st.one_of(
        _add, _add, _add,  # weighted: most events are new chunks, as in production
        st.tuples(st.just("pin"), st.sampled_from(CAMS), st.integers(0, 12)),
        st.tuples(st.just("unpin"), st.sampled_from(CAMS), st.integers(0, 12)),
        st.tuples(st.just("touch"), st.sampled_from(CAMS), st.integers(0, 12)),
        st.tuples(st.just("load"), st.sampled_from(CAMS), st.integers(0, 12),
                  st.sampled_from((FINE, COARSE))),
        st.tuples(st.just("important"), st.sampled_from(CAMS), st.integers(0, 12)),
        st.tuples(st.just("budget"), st.sampled_from(("gpu", "host", "disk")),
                  st.integers(0, 3000)),
        st.tuples(st.just("sweep"), st.integers(0, 120)),
    ),
    min_size=30,
    max_size=80,
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.booleans(), st.booleans(), st.sampled_from((300, 700, 2000)))
def test_random_events_keep_invariants_budgets_and_pins(steps, cold, write_through, gpu):
    index = make_index(gpu=gpu, host=500, disk=1500, cold=cold, write_through=write_through)
    next_seq = {c: 0 for c in CAMS}
    now = 0.0
    for step in steps:
        kind = step[0]
        if kind == "add":
            _, cam, form, nbytes = step
            seq = next_seq[cam]
            if form == COARSE or index.entry((cam, seq), FINE) is not None:
                next_seq[cam] += 1
            try:
                apply_checked(index, index.plan_add((cam, seq), form, nbytes, created=now))
            except TierFull:
                pass
            except ValueError as exc:  # replacing a pinned form is refused
                assert index.pinned((cam, seq)), exc
        elif kind in ("pin", "unpin", "touch", "important"):
            key = (step[1], step[2])
            if kind == "pin":
                index.pin([key])
            elif kind == "unpin":
                index.unpin([key])
            elif kind == "touch":
                index.touch(key)
            else:
                index.mark_important(key)
        elif kind == "load":
            apply_checked(index, index.plan_load((step[1], step[2]), step[3]))
        elif kind == "budget":
            try:
                apply_checked(index, index.set_budgets(**{step[1]: step[2]}))
            except (ValueError, TierFull):
                pass
        else:
            now += step[1]
            apply_checked(index, index.plan_sweep(now))
        index.check_integrity()
        for tier in (Tier.GPU, Tier.HOST, Tier.DISK):
            assert index.used(tier) <= index.budget(tier)


def test_lru_spills_least_recently_used_unprotected_chunk_to_host():
    index = make_index(gpu=300, prefill=1, coarse_window=0, write_through=False)
    for seq in range(3):
        apply_checked(index, index.plan_add(("cam-a", seq), FINE, 100, created=0))
    index.touch(("cam-a", 0))  # seq 1 is now the least recently used
    apply_checked(index, index.plan_add(("cam-a", 3), FINE, 100, created=0))
    assert index.entry(("cam-a", 1), FINE).tier == Tier.HOST
    assert index.entry(("cam-a", 0), FINE).tier == Tier.GPU
    assert index.entry(("cam-a", 3), FINE).tier == Tier.GPU


def test_prefill_window_stays_on_gpu_and_new_chunk_goes_lower_when_window_fills_gpu():
    index = make_index(gpu=200, prefill=2, coarse_window=0, write_through=False)
    for seq in range(2):
        apply_checked(index, index.plan_add(("cam-a", seq), FINE, 100, created=0))
    apply_checked(index, index.plan_add(("cam-a", 2), FINE, 100, created=0))
    # The window is now seqs 1, 2: seq 0 left the GPU, the new chunk took its place.
    assert [index.entry(("cam-a", s), FINE).tier for s in range(3)] == [
        Tier.HOST, Tier.GPU, Tier.GPU]


def test_pinned_chunk_is_not_spilled_even_when_least_recently_used():
    index = make_index(gpu=200, prefill=1, coarse_window=0, write_through=False)
    apply_checked(index, index.plan_add(("cam-a", 0), FINE, 100, created=0))
    apply_checked(index, index.plan_add(("cam-a", 1), FINE, 100, created=0))
    index.pin([("cam-a", 0)])
    apply_checked(index, index.plan_add(("cam-a", 2), FINE, 100, created=0))
    assert index.entry(("cam-a", 0), FINE).tier == Tier.GPU
    assert index.entry(("cam-a", 1), FINE).tier == Tier.HOST


def test_budget_cut_below_pinned_bytes_is_refused_with_the_numbers():
    index = make_index(gpu=300)
    apply_checked(index, index.plan_add(("cam-a", 0), FINE, 250, created=0))
    index.pin([("cam-a", 0)])
    with pytest.raises(ValueError, match=r"gpu budget 100 B is below the 250 B"):
        index.set_budgets(gpu=100)
    assert index.budget(Tier.GPU) == 300


def test_disk_pressure_drops_plain_fine_before_important_and_coarse():
    index = make_index(gpu=0, host=0, disk=3200, prefill=0, coarse_window=0)
    apply_checked(index, index.plan_add(("cam-a", 0), COARSE, 1000, created=0))
    apply_checked(index, index.plan_add(("cam-a", 0), FINE, 1000, created=1))
    apply_checked(index, index.plan_add(("cam-a", 1), FINE, 1000, created=2))
    index.mark_important(("cam-a", 0))
    apply_checked(index, index.plan_add(("cam-a", 2), FINE, 1000, created=3))
    assert index.entry(("cam-a", 1), FINE) is None  # dropped; its record left the index
    assert index.entry(("cam-a", 0), FINE).tier == Tier.DISK
    assert index.entry(("cam-a", 0), COARSE).tier == Tier.DISK


def test_full_disk_frees_a_margin_so_the_next_puts_need_no_eviction():
    index = make_index(gpu=0, host=0, disk=3200, prefill=0, coarse_window=0)
    for seq in range(64):
        apply_checked(index, index.plan_add(("cam-a", seq), FINE, 50, created=seq))
    plan = index.plan_add(("cam-a", 64), FINE, 50, created=64)
    assert [op.seq for op in plan.ops if op.kind == "drop"] == [0, 1, 2]  # 50 + 3200 // 32
    apply_checked(index, plan)
    plan = index.plan_add(("cam-a", 65), FINE, 50, created=65)
    assert [op.kind for op in plan.ops] == ["place"]


def test_sweep_drops_expired_fine_keeps_important_and_coarse_and_is_idempotent():
    index = make_index()
    for seq in range(2):
        for form in (FINE, COARSE):
            apply_checked(index, index.plan_add(("cam-a", seq), form, 10, created=0))
    index.mark_important(("cam-a", 1))
    plan = index.plan_sweep(now=150)
    assert {(op.seq, op.form) for op in plan.ops} == {(0, FINE)}
    apply_checked(index, plan)
    assert not index.plan_sweep(now=150)
    apply_checked(index, index.plan_sweep(now=1000))
    assert index.seqs("cam-a") == []
    assert index.record(("cam-a", 0)) is None  # fully expired chunks leave the index


def test_index_and_policy_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; import model.kv.index, model.kv.policy, model.kv.records; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=__file__.rsplit("/tests/", 1)[0])
    assert out.stdout.strip() == "False"
