"""Prefill benchmark: decoded frames already on the device -> a complete per-camera KV
memory (fine + coarse + summary keys for every chunk), for several video lengths, beside
the plain-transformers reference (dense SigLIP over every frame + one dense Qwen2 causal
prefill over the whole sequence) measured in the same run on the same device.

    python bench/prefill.py --vision-ahead 32 --vision-batch 128   # H100, 512..10000 frames
    python bench/prefill.py --variants compile+blocks ...          # compiled variants
    python bench/prefill.py --quick                                # CPU smoke run (CI)

The whole video is queued at once (the queue is sized to it) and every timed run's memory
is checked complete: every chunk stored fine and coarse, nothing dropped. Variants apply
cumulatively in the order given (FP8 swaps layers in place). `--profile N` adds a
per-phase wall-time table and the top kernels for N frames; `--trace N` the time per
chunk along an N-frame video, window by window, with the GPU's clock and power.
Prints one JSON line per (size, variant). FLOP counts are the model's linear and
attention work (SigLIP + Qwen2 with each chunk's bounded context; DTS and the projector
are left out of the count and so make the TFLOP/s figure conservative).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import reference as ref  # noqa: E402
from bench.common import emit, peak_gib, pick_device, reset_peak, sync, time_fn  # noqa: E402
from model.engine.engine import Engine, EngineConfig  # noqa: E402

QUICK_SIZES = (16, 32)
FULL_SIZES = (512, 1024, 2048, 4096, 10000)


def build_ours(device: torch.device, quick: bool, dtype: torch.dtype):
    from model.checkpoint import build_random
    from model.sizes import real_config
    from model.tiny import tiny_config

    cfg = tiny_config() if quick else real_config()
    return build_random(cfg, device=device.type, dtype=dtype)


def make_frames(n: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator(device=device).manual_seed(n)
    return torch.randint(0, 256, (n, 384, 384, 3), dtype=torch.uint8, device=device, generator=g)


def engine_config(args, n_frames: int, variant: str = "bf16") -> EngineConfig:
    # The whole recorded video is queued at once, so the queue must hold every chunk
    # (the default bound of 8 is for live cameras, where dropping the oldest is right).
    return EngineConfig(max_batch=args.max_batch, max_pending=max(8, -(-n_frames // 16)),
                        fused_blocks="blocks" in variant, camera_window=args.camera_window,
                        **({"vision_ahead": args.vision_ahead} if args.vision_ahead else {}))


def submit_video(eng: Engine, frames: torch.Tensor) -> None:
    """Queue a whole video of camera "cam" as 16-frame chunks (the last one padded to
    whole groups of 4 by repeating its last frame)."""
    n_chunks = -(-frames.shape[0] // 16)
    for seq in range(n_chunks):
        clip = frames[seq * 16:(seq + 1) * 16]
        pad = (-clip.shape[0]) % 4
        if pad:
            clip = torch.cat([clip, clip[-1:].expand(pad, -1, -1, -1)])
        eng.submit("cam", seq, clip, [seq * 16.0 + 4 * g for g in range(clip.shape[0] // 4)], 0.0)


def prefill_all(model, frames: torch.Tensor, cfg: EngineConfig) -> Engine:
    eng = Engine(model, cfg)
    submit_video(eng, frames)
    eng.run_until_idle()
    return eng


def check_complete(eng: Engine, n_frames: int) -> None:
    """The memory is complete: every chunk stored fine and coarse, nothing dropped."""
    n_chunks = -(-n_frames // 16)
    seqs = eng.store.seqs("cam")
    dropped = eng.scheduler.dropped.get("cam", 0)
    missing = [s for s in range(n_chunks) if not (eng.store.has(("cam", s), "fine")
                                                  and eng.store.has(("cam", s), "coarse"))]
    if seqs != list(range(n_chunks)) or dropped or missing:
        raise SystemExit(f"incomplete memory for {n_frames} frames: {len(seqs)} of {n_chunks} "
                         f"chunks stored, {dropped} dropped, missing {missing[:5]}")


def our_flops(frames: int, quick: bool) -> float:
    """SigLIP + the chunked LLM work (linear layers over every token; attention of each
    608-token chunk over its bounded context of about 2,500 tokens)."""
    tokens = ref.video_tokens(frames)
    c = ref.qwen2_config(quick)
    chunk = 4 * (ref.TOKENS_PER_GROUP + 8)
    ctx = 20 + 3 * chunk + 256 * 8
    attn = c.num_hidden_layers * 4 * tokens * (ctx + chunk / 2) * c.hidden_size
    linear = ref.qwen2_dense_flops(tokens, quick) - c.num_hidden_layers * 2 * tokens * tokens \
        * c.hidden_size
    return ref.siglip_flops(frames, quick) + linear + attn


def alloc_stats(device: torch.device) -> dict:
    """Allocator pressure: reserved peak and cudaMalloc retries (each frees the cache and
    synchronises: a slowdown that grows with the memory held)."""
    if device.type != "cuda":
        return {}
    st = torch.cuda.memory_stats(device)
    return {"reserved_peak_gib": st.get("reserved_bytes.all.peak", 0) / 2**30,
            "alloc_retries": st.get("num_alloc_retries", 0)}


def setup_variant(model, variant: str) -> None:
    if "compile" in variant:
        model.compile_vision()
    if "fp8" in variant:  # "fp8llm": the LLM's linear layers only; "fp8": SigLIP's too
        from model.fp8 import apply_fp8

        apply_fp8(model, ("llm",) if "fp8llm" in variant else ("vision", "llm"))


def bench_ours(args, device, dtype) -> None:
    model = build_ours(device, args.quick, dtype)
    model.vision_batch = args.vision_batch
    for variant in args.variants:
        setup_variant(model, variant)
        warm = 16 if args.quick else 512
        prefill_all(model, make_frames(min(warm, 512), device), engine_config(args, warm,
                                                                             variant))
        for n in args.sizes:
            frames = make_frames(n, device)
            cfg = engine_config(args, n, variant)
            last: list[Engine] = []  # the newest run's engine, checked after timing

            def run(f=frames, m=model, c=cfg, keep=last):
                keep.clear()  # free the previous run's memory first
                keep.append(prefill_all(m, f, c))

            reset_peak(device)
            t = time_fn(run, device, warmup=0, repeat=args.repeat if n <= 2048 else 1)
            check_complete(last[0], n)
            last.clear()
            flops = our_flops(n, args.quick)
            emit("prefill.ours", device, variant=variant, frames=n, seconds=t["median_s"],
                 min_s=t["min_s"], frames_per_s=n / t["median_s"],
                 tflops=flops / t["median_s"] / 1e12, peak_gib=peak_gib(device),
                 repeats=t["repeats"], dtype=str(dtype).removeprefix("torch."), complete=True,
                 camera_window=args.camera_window,
                 **alloc_stats(device))
            del frames
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if args.profile:
            profile(model, args, device, variant)
        if args.trace:
            trace(model, args, device, variant)
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def profile(model, args, device, variant: str) -> None:
    from bench.phases import PhaseTimer, top_kernels

    n = args.profile
    frames = make_frames(n, device)
    cfg = engine_config(args, n, variant)
    eng = Engine(model, cfg)
    timer = PhaseTimer(device)
    timer.instrument(eng)
    submit_video(eng, frames)
    eng.run_until_idle()
    emit("prefill.phases", device, variant=variant, frames=n, phases_s=timer.table())
    kernels = top_kernels(lambda: prefill_all(model, frames, cfg), device)
    emit("prefill.kernels", device, variant=variant, frames=n, top=kernels)


def gpu_sample() -> dict:
    """SM clock, power, temperature and active throttle reasons from nvidia-smi ({} if
    there is none): whether a long run slows because the GPU does."""
    import subprocess

    fields = "clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(fields.split(","), (x.strip() for x in out.split(",")), strict=False))


def trace(model, args, device, variant: str, window: int = 64) -> None:
    """Per-step wall time (synchronised) over one long video, averaged per `window`
    chunks, with a GPU clock/power sample per window: where a long run's time goes."""
    import time

    n = args.trace
    frames = make_frames(n, device)
    eng = Engine(model, engine_config(args, n, variant))
    submit_video(eng, frames)
    rows, done, t_win, n_win = [], 0, 0.0, 0
    while eng.scheduler.n_pending():
        sync(device)
        t0 = time.perf_counter()
        got = len(eng.step())
        sync(device)
        t_win += time.perf_counter() - t0
        done, n_win = done + got, n_win + got
        if n_win >= window or not eng.scheduler.n_pending():
            rows.append({"chunks_to": done, "ms_per_chunk": round(1e3 * t_win / max(1, n_win), 2),
                         **gpu_sample()})
            t_win, n_win = 0.0, 0
    emit("prefill.trace", device, variant=variant, frames=n, window_chunks=window,
         windows=rows, peak_gib=peak_gib(device))


def bench_reference(args, device, dtype) -> None:
    siglip = ref.build_siglip(device, dtype, args.quick)
    qwen = ref.build_qwen2(device, dtype, args.quick)
    for n in [s for s in args.sizes if s <= args.reference_max]:
        pixels = torch.randn(n, 3, 384, 384, device=device, dtype=dtype)
        tokens = ref.video_tokens(n)
        ids = torch.randint(0, qwen.config.vocab_size, (1, tokens), device=device)
        reset_peak(device)
        tv = time_fn(lambda p=pixels: ref.siglip_encode(siglip, p, args.vision_batch), device,
                     warmup=1, repeat=args.repeat)
        tl = time_fn(lambda i=ids: ref.qwen2_dense_prefill(qwen, i), device, warmup=1,
                     repeat=args.repeat)
        total = tv["median_s"] + tl["median_s"]
        flops = ref.siglip_flops(n, args.quick) + ref.qwen2_dense_flops(tokens, args.quick)
        emit("prefill.reference", device, frames=n, tokens=tokens, seconds=total,
             siglip_s=tv["median_s"], qwen2_dense_s=tl["median_s"], frames_per_s=n / total,
             tflops=flops / total / 1e12, peak_gib=peak_gib(device),
             dtype=str(dtype).removeprefix("torch."))
        del pixels, ids
        sync(device)


def main() -> None:
    ap = argparse.ArgumentParser(description="frames -> complete KV memory, ours vs transformers")
    ap.add_argument("--quick", action="store_true", help="CPU smoke run with tiny sizes")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--reference-max", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vision-batch", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--camera-window", type=int, default=EngineConfig.camera_window,
                    help="consecutive chunks of the video prefilled per step (1: one)")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--variants", type=lambda s: s.split(","), default=["bf16"],
                    help="comma list of bf16, compile (SigLIP + DTS torch.compile), "
                    "blocks (fused LLM layer blocks, compiled), fp8 (FP8 linear layers of SigLIP and "
                    "the LLM), fp8llm (the LLM's only); "
                    "combine with +, e.g. compile+blocks")
    ap.add_argument("--vision-ahead", type=int, default=0,
                    help="EngineConfig.vision_ahead (chunks encoded ahead in one batch)")
    ap.add_argument("--profile", type=int, default=0, help="frames for a per-phase profile")
    ap.add_argument("--trace", type=int, default=0,
                    help="frames for a per-step time trace with GPU clock samples")
    args = ap.parse_args()
    device = pick_device(args.quick)
    args.sizes = list(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    if args.quick:
        args.repeat = 1
        args.vision_batch = min(args.vision_batch, 16)
    dtype = torch.float32 if args.quick else torch.bfloat16
    bench_ours(args, device, dtype)
    if not args.skip_reference:
        bench_reference(args, device, dtype)


if __name__ == "__main__":
    main()
