"""Live cameras: the largest number N of 1 fps cameras one GPU holds in real time while
questions arrive, and the question latency p50/p95 over one hour of memory per camera.

Simulation: every camera delivers a chunk (16 frames at 384 x 384, already decoded on the
device) every 16 s of stream time. A round submits one chunk per camera and runs engine
steps until all are prefilled (vision for all N chunks encoded ahead in large batches,
then the LLM in batches of `--max-batch` chunks, each over its bounded context); during a
round questions arrive at `--qps` per simulated second and are answered between steps
against a camera holding one hour of memory (bench.synthetic.AliasStore over really
prefilled chunks). Fine KV of the newest p = 3 chunks per camera stays on the GPU, coarse KV
goes to host memory (bench.synthetic.WindowStore). A round is real time when its wall
time (prefill + questions) is at most 16 s. After `--warm` rounds (contexts full),
`--rounds` rounds are timed; the load is their mean wall time over 16 s.

The search measures a first N, extrapolates the capacity, and checks the candidates.

    python bench/live.py [--quick] [--cameras 64,128,256,320] [--rounds 3]
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
from bench.synthetic import AliasStore, WindowStore  # noqa: E402
from model.engine.engine import Engine, EngineConfig  # noqa: E402

CHUNK_SECONDS = 16.0
QUESTION = "Did anyone enter the room in the last hour? Give the times."


def ask_timed(qeng: Engine, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    qeng.ask("cam", QUESTION)
    sync(device)
    return time.perf_counter() - t0


def run_round(eng: Engine, qeng: Engine, n: int, seq: int, pool: torch.Tensor, qps: float,
              device) -> tuple[float, list[float]]:
    sync(device)
    t0 = time.perf_counter()
    for cam in range(n):
        frames = pool[(cam + seq) % pool.shape[0]]
        eng.submit(f"c{cam}", seq, frames, [seq * CHUNK_SECONDS + 4 * g for g in range(4)], 0.0)
    n_questions = round(qps * CHUNK_SECONDS)
    lat: list[float] = []
    steps = 0
    while eng.scheduler.n_pending():
        eng.step()
        steps += 1
        if len(lat) < n_questions:
            lat.append(ask_timed(qeng, device))
    while len(lat) < n_questions:
        lat.append(ask_timed(qeng, device))
    sync(device)
    return time.perf_counter() - t0, lat


def measure(model, n: int, args, qeng: Engine, pool: torch.Tensor, device) -> dict:
    cfg = EngineConfig(max_batch=args.max_batch, vision_ahead=min(n, args.vision_ahead),
                       max_pending=2,
                       max_new_tokens=args.max_new_tokens, fused_blocks=args.fused)
    # the p previous chunks are all a prefill reads fine: older fine KV leaves the GPU
    eng = Engine(model, cfg, WindowStore(device, keep_fine=max(1, cfg.prev_chunks or 0)))
    reset_peak(device)
    walls, lats = [], []
    for r in range(args.warm + args.rounds):
        wall, lat = run_round(eng, qeng, n, r, pool, args.qps, device)
        if r >= args.warm:
            walls.append(wall)
            lats += lat
        dropped = sum(eng.scheduler.dropped.values())
        if dropped:
            raise SystemExit(f"{dropped} chunks dropped at N={n}: the bench fell behind")
    lats.sort()
    mean = statistics.mean(walls)
    res = {"cameras": n, "round_s_mean": mean, "round_s_max": max(walls),
           "load": mean / CHUNK_SECONDS, "real_time": max(walls) <= CHUNK_SECONDS,
           "chunks_per_s": n / mean, "frames_per_s": 16 * n / mean,
           "questions": len(lats),
           "question_p50_s": statistics.median(lats) if lats else None,
           "question_p95_s": lats[min(len(lats) - 1, round(0.95 * (len(lats) - 1)))]
           if lats else None, "peak_gib": peak_gib(device),
           "simulated_s": (args.warm + args.rounds) * CHUNK_SECONDS}
    del eng
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description="cameras held in real time on one GPU")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cameras", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--warm", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--qps", type=float, default=0.25, help="questions per simulated second")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--vision-ahead", type=int, default=64,
                    help="chunks encoded per vision call (bounds the transient memory)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--compile", action="store_true", help="torch.compile SigLIP + DTS")
    ap.add_argument("--search", action="store_true", help="extrapolate from the first N")
    ap.add_argument("--fused", action="store_true", help="EngineConfig.fused_blocks")
    args = ap.parse_args()
    device = pick_device(args.quick)
    if args.quick:
        args.cameras, args.warm, args.rounds, args.qps = [2, 3], 1, 1, 0.125
    cameras = args.cameras or [64]
    model = build_ours(device, args.quick, torch.float32 if args.quick else torch.bfloat16)
    model.vision_batch = 16 if args.quick else 128
    if args.compile:
        model.compile_vision()
    src = prefill_all(model, make_frames(64, device), EngineConfig(vision_ahead=4))
    qeng = Engine(model, EngineConfig(max_new_tokens=args.max_new_tokens,
                                      fused_blocks=args.fused),
                  AliasStore(src.store, "cam", "cam", 225))
    qeng.recover("cam")
    pool = make_frames(16 * 8, device).view(8, 16, 384, 384, 3)
    done = set()
    for n in cameras:
        try:
            res = measure(model, n, args, qeng, pool, device)
        except torch.OutOfMemoryError:
            gc.collect()
            torch.cuda.empty_cache()
            emit("live", device, cameras=n, error="out of GPU memory", real_time=False)
            continue
        done.add(n)
        emit("live", device, memory_hours_per_question=1, qps=args.qps,
             max_batch=args.max_batch, max_new_tokens=args.max_new_tokens,
             compiled=args.compile, fused=args.fused, **res)
        if args.search and len(cameras) == 1:
            guess = int(n / res["load"]) // 16 * 16
            cameras += [c for c in (guess, guess + 16) if c not in done and c > 0]


if __name__ == "__main__":
    main()
