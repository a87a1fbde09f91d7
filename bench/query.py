"""Question latency over 1 hour and 24 hours of one camera's memory (dense, coarse, mixed),
beside the dense-only reference (every chunk dense, as the released decoder keeps it).

A real memory of `--src-chunks` chunks is prefilled by the engine from random frames;
`bench.synthetic.AliasStore` then presents a camera with 225 (1 h) or 5,400 (24 h) chunks
whose tensors alias those (latency depends on shapes and counts, not values). Each mode
runs `Engine.ask` end to end: relevance over every chunk's summary key, selection within
the token budget, assembly with RoPE at gather, the question's prefill and greedy
decoding. Random weights rarely emit <|im_end|>, so answers run to `max_new_tokens`
(the worst case); the tokens generated are reported.

Modes: mixed (top-k dense, the rest coarse, 16k budget: the default), coarse (fine KV
absent, coarse within the budget), dense (top-k dense only: budget = k chunks), and
reference (every chunk dense, no budget; only where it fits on the GPU).

    python bench/query.py [--quick] [--hours 1,24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, peak_gib, pick_device, reset_peak, sync  # noqa: E402
from bench.prefill import build_ours, make_frames, prefill_all  # noqa: E402
from bench.synthetic import AliasStore  # noqa: E402
from model.engine.engine import Engine, EngineConfig  # noqa: E402

QUESTION = "When did a person enter the room? Give the times."
CHUNKS_PER_HOUR = 225


def latency(eng: Engine, repeat: int, device) -> dict:
    eng.ask("cam", QUESTION)  # warm-up (allocator, kernels)
    times, out = [], None
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        out = eng.ask("cam", QUESTION)
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    dense = sum(1 for _s, how in out.chunks_used if how == "dense")
    return {"p50_s": statistics.median(times), "p95_s": p95, "repeats": repeat,
            "tokens_out": len(out.token_ids), "chunks_dense": dense,
            "chunks_coarse": len(out.chunks_used) - dense}


def profile_ask(eng: Engine, device) -> dict:
    """One question's time per phase: relevance and selection, assembly (store reads,
    gather, rotation), the question's prefill, the decode steps, and the rest."""
    from bench.phases import PhaseTimer
    from model.engine import decode
    from model.engine.graphs import DecodeGraph

    eng.ask("cam", QUESTION)  # warm (graphs captured, kernels compiled)
    timer = PhaseTimer(device)
    timer.wrap(decode, "plan_question", "plan: relevance (question forward) + selection")
    timer.wrap(decode, "assemble", "assemble: store + gather + rotate")
    timer.wrap(decode, "greedy", "greedy")
    timer.wrap(DecodeGraph, "load", "decode buffer: load context")
    timer.wrap(DecodeGraph, "step", "decode steps")
    timer.wrap(eng, "ask", "ask")
    out = eng.ask("cam", QUESTION)
    s = dict(timer.seconds)
    total, greedy = s.pop("ask"), s.pop("greedy")
    s["question prefill (+ eager steps off CUDA)"] = greedy - s.get(
        "decode buffer: load context", 0.0) - s.get("decode steps", 0.0)
    s["other (tokenize, python, text)"] = total - greedy - s[
        "plan: relevance (question forward) + selection"] - s["assemble: store + gather + rotate"]
    s["ask: total"] = total
    return {"phases_s": {k: round(v, 4) for k, v in s.items()},
            "decode_steps": len(out.token_ids) - 1}


def modes(n_chunks: int, base: EngineConfig) -> list[tuple[str, EngineConfig, bool]]:
    chunk_tokens = 4 * (144 + 8)
    fits = n_chunks * chunk_tokens * 56 * 1024 * 4 < 50 * 2**30  # context + copies
    out = [("mixed", base, True), ("coarse", base, False),
           ("dense", EngineConfig(top_k=base.top_k, token_budget=base.top_k * chunk_tokens
                                  + 1024, max_new_tokens=base.max_new_tokens,
                                  fused_blocks=base.fused_blocks), True)]
    if fits:
        out.append(("reference", EngineConfig(top_k=n_chunks, token_budget=1 << 30,
                                              max_new_tokens=base.max_new_tokens), True))
        # the reference keeps the plain layer path: it stands for the released decoder
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="question latency over long memories")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hours", type=lambda s: [float(x) for x in s.split(",")], default=[1, 24])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--src-chunks", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--fused", action="store_true", help="EngineConfig.fused_blocks")
    ap.add_argument("--profile", action="store_true",
                    help="after the timings, one mixed-mode question per --hours split into "
                         "phases (device-synchronised, so a little slower than unprofiled)")
    args = ap.parse_args()
    device = pick_device(args.quick)
    if args.quick:
        args.hours, args.repeat, args.src_chunks = [0.02, 0.1], 1, 2
    model = build_ours(device, args.quick, torch.float32 if args.quick else torch.bfloat16)
    src = prefill_all(model, make_frames(16 * args.src_chunks, device),
                      EngineConfig(max_pending=args.src_chunks, vision_ahead=args.src_chunks))
    base = EngineConfig(max_new_tokens=args.max_new_tokens, fused_blocks=args.fused)
    for hours in args.hours:
        n = max(2, round(hours * CHUNKS_PER_HOUR))
        for mode, cfg, fine in modes(n, base):
            store = AliasStore(src.store, "cam", "cam", n, fine=fine)
            eng = Engine(model, cfg, store)
            eng.recover("cam")
            reset_peak(device)
            try:
                res = latency(eng, args.repeat, device)
            except torch.OutOfMemoryError:
                res = {"error": "out of GPU memory"}
            emit("query", device, fused=cfg.fused_blocks, hours=hours, chunks=n, mode=mode, top_k=cfg.top_k,
                 token_budget=cfg.token_budget, max_new_tokens=cfg.max_new_tokens,
                 peak_gib=peak_gib(device), **res)
            del eng, store
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if args.profile:  # last: the wrappers stay on the classes they time
        for hours in args.hours:
            n = max(2, round(hours * CHUNKS_PER_HOUR))
            _mode, cfg, fine = modes(n, base)[0]
            eng = Engine(model, cfg, AliasStore(src.store, "cam", "cam", n, fine=fine))
            eng.recover("cam")
            emit("query.phases", device, fused=cfg.fused_blocks, hours=hours, chunks=n,
                 mode="mixed", **profile_ask(eng, device))


if __name__ == "__main__":
    main()
