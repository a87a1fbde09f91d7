"""CPU smoke runs of the GPU benchmarks (`--quick`: tiny model, CPU): each script runs end
to end and prints valid JSON lines with the fields BENCHMARKS.md reads. No timing is
asserted (timings are measured on an H100 and recorded in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_quick(capsys, monkeypatch, script: str, *args: str) -> list[dict]:
    monkeypatch.setattr(sys, "argv", [str(BENCH / script), "--quick", *args])
    runpy.run_path(str(BENCH / script), run_name="__main__")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert lines, f"{script} printed no JSON line"
    return [json.loads(ln) for ln in lines]


@pytest.mark.slow
def test_prefill_quick_builds_complete_memories_for_ours_and_reference(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "prefill.py", "--sizes", "16,32", "--variants",
                     "bf16,blocks", "--vision-ahead", "2", "--reference-max", "16",
                     "--trace", "48")
    traces = [r for r in rows if r["bench"] == "prefill.trace"]
    assert [t["windows"][-1]["chunks_to"] for t in traces] == [3, 3]  # 48 frames, 2 variants
    assert all(w["ms_per_chunk"] > 0 for t in traces for w in t["windows"])
    ours = [r for r in rows if r["bench"] == "prefill.ours"]
    assert {(r["variant"], r["frames"]) for r in ours} == {
        ("bf16", 16), ("bf16", 32), ("blocks", 16), ("blocks", 32)}
    assert all(r["complete"] and r["seconds"] > 0 and "command" in r for r in ours)
    refs = [r for r in rows if r["bench"] == "prefill.reference"]
    assert [r["frames"] for r in refs] == [16]
    assert refs[0]["seconds"] == pytest.approx(refs[0]["siglip_s"] + refs[0]["qwen2_dense_s"])


@pytest.mark.slow
def test_query_quick_reports_every_mode_with_the_chunks_it_used(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "query.py")
    modes = {(r["chunks"], r["mode"]) for r in rows}
    assert modes == {(c, m) for c in (4, 22) for m in ("mixed", "coarse", "dense", "reference")}
    for r in rows:
        assert r["p50_s"] <= r["p95_s"]
        if r["mode"] == "coarse":
            assert r["chunks_dense"] == 0 and r["chunks_coarse"] > 0
        if r["mode"] == "reference":
            assert r["chunks_dense"] == r["chunks"]


@pytest.mark.slow
def test_live_quick_holds_its_cameras_and_answers_questions(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "live.py", "--fused")
    assert [r["cameras"] for r in rows] == [2, 3]
    for r in rows:
        assert r["questions"] == 2 and r["question_p50_s"] > 0
        assert r["load"] == pytest.approx(r["round_s_mean"] / 16.0)


@pytest.mark.slow
def test_fp8_accuracy_quick_reports_zero_for_the_rerun_and_error_for_fp8(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "fp8_accuracy.py")
    by = {r["variant"]: r for r in rows}
    assert by["bf16 rerun (noise floor)"]["kv_k_rel_err"] == 0.0
    assert 0.0 < by["fp8 llm"]["kv_k_rel_err"] < 0.5
    assert 0.0 < by["fp8 llm+vision"]["logits_rel_err"] < 1.0


def test_components_quick_reports_every_part_and_variant(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "components.py", "--max-autotune")
    seen = {(r["bench"], r["variant"]) for r in rows}
    assert seen == {("components.dts", "released"), ("components.dts", "ours"),
                    ("components.decode", "eager"), ("components.decode", "graph"),
                    ("components.decode", "eager+fp8"), ("components.decode", "graph+fp8"),
                    ("components.decode", "graph-cublas"),
                    ("components.decode", "graph-cublas+fp8"),
                    ("components.llm_chunk", "modules"), ("components.llm_chunk", "blocks"),
                    ("components.llm_chunk", "blocks+fp8"), ("components.siglip", "eager"),
                    ("components.siglip", "fused"), ("components.siglip", "compiled"),
                    ("components.siglip", "compiled-max-autotune"),
                    ("components.siglip", "compiled+fp8")}
    dts = next(r for r in rows if r["bench"] == "components.dts" and r["variant"] == "ours")
    assert dts["rel_err_vs_released"] < 1e-4  # fp32 on the CPU: the same function
    assert all(r.get("ms", r.get("ms_per_token", 0)) > 0 for r in rows)


def test_diagnose_quick_reports_attention_kernels_gemv_and_launch_figures(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "diagnose.py")
    kernels = {r["kernel"] for r in rows if r["bench"] == "diagnose.attention"}
    assert {"flash_gqa_lower_right", "cudnn_mask_expanded_kv"} <= kernels
    flash = next(r for r in rows if r.get("kernel") == "flash_gqa_lower_right")
    assert flash["rel_err"] < 1e-4
    assert {r["bench"] for r in rows} >= {"diagnose.gemv", "diagnose.decode_step",
                                          "diagnose.chunk_launch"}


@pytest.mark.slow
def test_service_path_quick_runs_the_memory_loop_beside_the_engine_alone(capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "service_path.py", "--cameras", "3")
    by_mode = {r["mode"]: r for r in rows}
    assert set(by_mode) == {"service", "engine", "per-chunk"}
    service = by_mode["service"]
    # the loop batched the three cameras: one step per round, one standing batch per step
    assert service["steps"] == 2 and service["standing_batches"] == 2
    assert service["scores"] == 6 and service["chunks"] == 3
    assert by_mode["per-chunk"]["steps"] == 6  # one step per chunk, the old way
    for r in rows:
        assert r["chunks_per_s"] > 0 and r["kv"]["tiers"]["disk"]["used"] > 0


@pytest.mark.slow
def test_service_quick_runs_xlwatch_serve_under_load_and_reports_each_figure(
        capsys, monkeypatch):
    """bench/service.py --quick: the real `xlwatch serve` in a subprocess (Ray, SQLite, the
    tiny random checkpoint on the CPU: the GPU and the real weights cannot run here),
    cameras added and questions asked through the HTTP API only."""
    rows = run_quick(capsys, monkeypatch, "service.py", "--ramp", "2")
    steps, summary = rows[:-1], rows[-1]
    assert [s["cameras"] for s in steps] == [2] and summary["step"] == "summary"
    step = steps[0]
    assert step["history_chunks"] == 4  # 64 s of history at 1 fps, all in the memory
    assert step["dropped"] == 0 and step["prefilled_share"] > 0.5
    assert step["questions"] >= 3 and step["question_errors"] == []
    assert 0 < step["question_p50_s"] <= step["question_p95_s"]
    assert step["host_pss_gib"] > 0
    assert 0 < step["loop_shares"]["stepping"] <= 1 and step["phase_shares"]["prefill"] > 0
    (profile,) = step["profile"].values()  # POST /debug/profile over two steps
    assert profile["complete"] and profile["steps"] == 2 and profile["chunks"] >= 2
    assert profile["phases_s"]["prefill"] > 0 and profile["loop_s"]["stepping"] > 0
    assert summary["disk_written_gib"] > 0 and summary["disk_gib_per_camera_hour"] > 0
    motion = summary["alert_latency_after_chunk_end"]["door-motion"]
    assert motion["alerts"] > 0 and motion["p50_s"] >= 0


@pytest.mark.slow
def test_answer_loss_quick_compares_every_disk_form_with_the_dense_reference(
        capsys, monkeypatch, vtest_path):
    """bench/answer_loss.py --quick: the tiny random checkpoint (no real weights here)
    through the service's engine, tiered store and disk codec on vtest.avi."""
    rows = run_quick(capsys, monkeypatch, "answer_loss.py", "--clip", str(vtest_path))
    (row,) = rows
    assert row["disk_codec"] == "repool+fp8" and row["questions"] == 3
    for case in ("coarse_r4", "disk_fp8", "disk_coarse_r16"):
        got = row[case]
        assert 0 <= got["same_answer"] <= 1 and got["first_token_kl_max"] >= 0
        assert got["first_token_kl_mean"] <= got["first_token_kl_max"]
    # the files on disk are the smaller forms: coarse r16 FP8 well under fine FP8
    assert 0 < row["last_file_bytes"]["coarse"] < row["last_file_bytes"]["fine"] / 4


@pytest.mark.slow
def test_redense_quick_reads_chunks_back_from_the_recording_after_a_restart(
        capsys, monkeypatch):
    rows = run_quick(capsys, monkeypatch, "redense.py")
    summary = rows[-1]
    assert summary["chunks"] == 4 and summary["chunks_dense_again"] == 4
    assert summary["read_s_per_chunk"] > 0 and summary["prefill_s_per_chunk"] > 0
    assert summary["same_answer"] == 2  # the tiny model's greedy answers, same KV
    rounds = rows[:-1]
    assert [r["round"] for r in rounds] == ["dense (pools)"] * 2 + [
        "dense again (recording)"] * 2 + ["dense (pools, after)"] * 2
    for r in rounds:
        kinds = {k for _s, k in r["used"]}
        assert kinds == ({"redense"} if r["round"].startswith("dense again") else {"dense"})


def test_kv_index_quick_plans_puts_and_reads_with_every_tier_full(capsys, monkeypatch):
    """bench/kv_index.py --quick: the real KVIndex (no tensors), tiers filled."""
    (row,) = run_quick(capsys, monkeypatch, "kv_index.py")
    assert row["chunks"] == 8 * 12 and row["entries"] == 2 * row["chunks"]
    assert row["gpu_used_gib"] <= row["gpu_gib"] and row["host_used_gib"] <= row["host_gib"]
    assert row["gpu_used_gib"] > 0.9 * row["gpu_gib"]  # full: the puts planned evictions
    assert row["put_ms_p50"] > 0 and row["read_ms_mean"] >= 0
