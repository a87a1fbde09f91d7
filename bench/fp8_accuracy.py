"""Accuracy effect of the FP8 linear layers against bf16, same model and same inputs.

Builds the model (real sizes, random bf16 weights, on the GPU; `--quick`: tiny, CPU, FP8
simulated), prefills the same frames into a complete memory, then asks the same question,
first in bf16, then with FP8 linear layers in the LLM only, then in the LLM and the vision
tower. Reports the relative error (||x - ref|| / ||ref||, float64) of every chunk's fine
K and V, of the question's first answer logits, and of P(Yes) of a standing question, and
whether the greedy answer's first token agrees.

    python bench/fp8_accuracy.py [--quick] [--frames 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, pick_device  # noqa: E402
from bench.prefill import build_ours, make_frames, prefill_all  # noqa: E402
from model.engine import decode  # noqa: E402
from model.engine.engine import EngineConfig  # noqa: E402
from model.fp8 import apply_fp8  # noqa: E402

QUESTION = "When did a person enter the room?"
STANDING = ["Is anyone fighting or lying on the floor? Answer yes or no."]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@torch.inference_mode()
def run(model, frames: torch.Tensor) -> dict:
    n_chunks = frames.shape[0] // 16
    eng = prefill_all(model, frames, EngineConfig(max_pending=max(8, n_chunks)))
    fine = [eng.store.get(("cam", s), "fine") for s in range(n_chunks)]
    q_ids = list(eng.prompt.question_ids(QUESTION))
    parts, records = eng.query_parts(), eng.camera_records("cam")
    plan = decode.plan_question(parts, records, q_ids, None, None)
    ctx = decode.assemble(parts, records.memory, plan)
    _, logits = decode.greedy(parts, ctx, q_ids, 0)
    return {"k": torch.cat([f["k"].flatten() for f in fine]).cpu(),
            "v": torch.cat([f["v"].flatten() for f in fine]).cpu(),
            "logits": logits.float().cpu(),
            "p_yes": torch.tensor(eng.standing("cam", n_chunks - 1, STANDING))}


def compare(ref: dict, out: dict) -> dict:
    return {"kv_k_rel_err": rel_err(out["k"], ref["k"]),
            "kv_v_rel_err": rel_err(out["v"], ref["v"]),
            "logits_rel_err": rel_err(out["logits"], ref["logits"]),
            "top1_agrees": bool(out["logits"].argmax() == ref["logits"].argmax()),
            "p_yes_abs_diff": float((out["p_yes"] - ref["p_yes"]).abs().max())}


def main() -> None:
    ap = argparse.ArgumentParser(description="FP8 linear layers vs bf16 on the same inputs")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--frames", type=int, default=64)
    args = ap.parse_args()
    device = pick_device(args.quick)
    frames = make_frames(32 if args.quick else args.frames, device)
    model = build_ours(device, args.quick, torch.bfloat16)
    ref = run(model, frames)
    again = run(model, frames)
    emit("fp8_accuracy", device, variant="bf16 rerun (noise floor)", frames=frames.shape[0],
         **compare(ref, again))
    apply_fp8(model, ("llm",))
    emit("fp8_accuracy", device, variant="fp8 llm", frames=frames.shape[0],
         **compare(ref, run(model, frames)))
    apply_fp8(model, ("vision",))
    emit("fp8_accuracy", device, variant="fp8 llm+vision", frames=frames.shape[0],
         **compare(ref, run(model, frames)))


if __name__ == "__main__":
    main()
