"""Component benchmark: each part of the prefill and decode paths alone, in its variants,
on the real sizes (random bf16 weights built on the GPU), so that a change to one part is
measured without the rest of the pipeline around it.

    python bench/components.py                 # H100: every part, every variant
    python bench/components.py --quick         # CPU smoke run (CI), tiny sizes

Parts (one JSON line per part and variant; ms are CUDA-event medians):
- `components.llm_chunk`: one chunk of new tokens (default 640, a 628-token chunk padded
  to whole tiles) through the 28 decoder layers over a dense context (default 4,300
  tokens: prefix, 256 older headers and 3 previous chunks); variants `modules` (module by
  module, eager), `blocks` (fused q/k/v and gate/up, torch.compile'd) and `blocks+fp8`.
  The blocks run also reports its top kernels.
- `components.decode`: one token over a context of --decode-context tokens: `eager`
  (one forward per token) against `graph` (model.engine.graphs, one CUDA graph replay),
  module layers and fused blocks, then with FP8 LLM layers (`+fp8`, weights read at half
  the bytes).
- `components.siglip`: a batch of --vision-batch frames through the tower: `eager`,
  `fused` (one q/k/v product), `compiled` (fused + torch.compile), `compiled+fp8`.
- `components.dts`: 24 groups of 4 frames through DTS: ours (model.dts, channels-last)
  against the released formulation (tests/model/dts_reference.py) in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, pick_device, sync, time_fn  # noqa: E402
from bench.phases import top_kernels  # noqa: E402
from bench.prefill import build_ours  # noqa: E402
from model.engine.graphs import graph_for  # noqa: E402
from model.engine.runner import KVBuffer, Runner  # noqa: E402
from model.fp8 import apply_fp8  # noqa: E402


def context_kv(runner: Runner, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    d = runner.dims
    shape = (d.n_layers, d.n_kv_heads, n, d.head_dim)
    return (torch.randn(shape, generator=gen, device=runner.device).to(runner.dtype),
            torch.randn(shape, generator=gen, device=runner.device).to(runner.dtype))


def llm_flops(runner: Runner, t: int, ctx: int) -> float:
    d, m = runner.dims, runner.model.model.layers[0].mlp
    inter = m.gate_proj.out_features
    per_tok = 2 * (d.hidden * (d.n_heads + 2 * d.n_kv_heads) * d.head_dim
                   + d.n_heads * d.head_dim * d.hidden + 3 * d.hidden * inter)
    attn = 4 * t * (ctx + t / 2) * d.n_heads * d.head_dim
    return d.n_layers * (t * per_tok + attn)


def bench_llm_chunk(model, args, device, variant: str) -> None:
    runner = Runner(model)
    if variant.startswith("blocks") and not runner.use_blocks(compile=device.type == "cuda"):
        raise SystemExit(f"variant {variant}: layers cannot run as blocks")
    gen = torch.Generator(device=device).manual_seed(0)
    k, v = context_kv(runner, args.context, gen)
    emb = torch.randn(1, args.chunk, runner.dims.hidden, generator=gen, device=device
                      ).to(runner.dtype)
    pos = (args.context + torch.arange(args.chunk, device=device))[None]

    def run():
        buf = KVBuffer.from_contexts([k], [v], extra=args.chunk)
        runner.forward(emb, pos, buf)

    t = time_fn(run, device, warmup=2, repeat=args.repeat)
    flops = llm_flops(runner, args.chunk, args.context)
    emit("components.llm_chunk", device, variant=variant, tokens=args.chunk,
         context=args.context, ms=t["median_s"] * 1e3, tflops=flops / t["median_s"] / 1e12)
    if variant == "blocks" and not args.quick:
        emit("components.llm_chunk.kernels", device, variant=variant,
             top=top_kernels(run, device, n=25))


def bench_decode(model, args, device, fused: bool, tag: str = "") -> None:
    """ms per token: eager steps, and a CUDA-graph step (with fused blocks, both with the
    one-token compiled blocks and with the prefill blocks' cuBLAS products)."""
    runners = {"": Runner(model)}
    if fused:
        runners[""].use_blocks(compile=device.type == "cuda")
        runners["-cublas"] = Runner(model)
        runners["-cublas"].use_blocks(compile=device.type == "cuda", decode_kernels=False)
    gen = torch.Generator(device=device).manual_seed(1)
    k, v = context_kv(runners[""], args.decode_context, gen)
    steps = args.steps
    for kind, runner in runners.items():
        emb = runner.embed(torch.tensor([[1]], device=device))

        def eager(runner=runner, emb=emb):
            buf = KVBuffer.from_contexts([k], [v], extra=steps)
            for i in range(steps):
                runner.forward(emb, torch.tensor([[args.decode_context + i]], device=device),
                               buf, logits_at=torch.tensor([0])).logits.argmax()

        graph = graph_for(runner, args.decode_context + steps + 1)  # as decode.greedy takes it

        def graphed(graph=graph):
            graph.load(k, v)
            for i in range(steps):
                graph.step(1, args.decode_context + i)

        fns = (("graph", graphed),) if kind else (("eager", eager), ("graph", graphed))
        for name, fn in fns:
            t = time_fn(fn, device, warmup=1, repeat=args.repeat)
            emit("components.decode", device, variant=name + kind + tag, blocks=fused,
                 steps=steps, context=args.decode_context,
                 ms_per_token=t["median_s"] * 1e3 / steps,
                 captured=graph.capture if name == "graph" else None)
        runner.decode_graphs.clear()  # each graph holds a KV buffer


def bench_siglip(model, args, device) -> None:
    gen = torch.Generator(device=device).manual_seed(2)
    size = model.config.vision.image_size
    pixels = torch.randn(args.vision_batch, 3, size, size, generator=gen, device=device
                         ).to(model.dtype)
    tower = model.model.vision_tower
    n_layers = len(tower.vision_tower.vision_model.encoder.layers)
    variants = ("eager", "fused", "compiled", "compiled-max-autotune", "compiled+fp8")
    for variant in variants if args.max_autotune else [v for v in variants if "max" not in v]:
        if variant == "fused":
            model.fuse_vision()
        fn = tower
        if variant.startswith("compiled") and device.type == "cuda":
            torch._dynamo.reset()  # max-autotune: Triton GEMM templates, epilogues fused
            mode = "max-autotune-no-cudagraphs" if "max" in variant else None
            fn = torch.compile(tower, dynamic=False, mode=mode)
        if variant.endswith("fp8"):
            apply_fp8(model, ("vision",))
            model.fuse_vision()  # the FP8 layers' q/k/v as one product too
        with torch.inference_mode():
            t = time_fn(lambda f=fn: f(pixels), device, warmup=2, repeat=args.repeat)
        emit("components.siglip", device, variant=variant, frames=args.vision_batch,
             layers=n_layers, ms=t["median_s"] * 1e3,
             frames_per_s=args.vision_batch / t["median_s"])


def bench_dts(model, args, device) -> None:
    from tests.model.dts_reference import SiglipAE as ReleasedAE

    cfg = model.config
    ours = model.model.sae
    released = ReleasedAE(cfg.dts).to(device=device, dtype=model.dtype)
    released.load_state_dict(ours.state_dict())
    gen = torch.Generator(device=device).manual_seed(3)
    grid = cfg.feature_grid
    x = torch.randn(args.dts_groups, cfg.dts.channels, 4, grid, grid, generator=gen,
                    device=device).to(model.dtype)
    with torch.inference_mode():
        want = released(x)
        got = ours(x)
        err = float((got.float() - want.float()).norm() / want.float().norm())
        for name, fn in (("released", released), ("ours", ours)):
            t = time_fn(lambda f=fn: f(x), device, warmup=2, repeat=args.repeat)
            emit("components.dts", device, variant=name, groups=args.dts_groups,
                 ms=t["median_s"] * 1e3, rel_err_vs_released=err if name == "ours" else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description="prefill and decode parts alone, in variants")
    ap.add_argument("--quick", action="store_true", help="CPU smoke run with tiny sizes")
    ap.add_argument("--context", type=int, default=4300)
    ap.add_argument("--chunk", type=int, default=640)
    ap.add_argument("--decode-context", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--vision-batch", type=int, default=128)
    ap.add_argument("--dts-groups", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts", default="dts,siglip,llm,decode")
    ap.add_argument("--max-autotune", action="store_true",
                    help="also SigLIP compiled with mode=max-autotune-no-cudagraphs (minutes)")
    args = ap.parse_args()
    device = pick_device(args.quick)
    if args.quick:
        args.context, args.chunk, args.decode_context, args.steps = 40, 16, 64, 3
        args.vision_batch, args.dts_groups, args.repeat = 2, 2, 1
    dtype = torch.float32 if args.quick else torch.bfloat16
    model = build_ours(device, args.quick, dtype)
    parts = args.parts.split(",")
    if "dts" in parts:
        bench_dts(model, args, device)
    if "decode" in parts:
        bench_decode(model, args, device, fused=False)
        bench_decode(model, args, device, fused=True)
    if "llm" in parts:
        for variant in ("modules", "blocks"):
            bench_llm_chunk(model, args, device, variant)
    if "siglip" in parts:
        bench_siglip(model, args, device)  # leaves SigLIP in FP8: after the bf16 parts
    if "llm" in parts or "decode" in parts:  # the FP8 swap is in place: done last
        apply_fp8(model, ("llm",))
    if "llm" in parts:
        bench_llm_chunk(model, args, device, "blocks+fp8")
    if "decode" in parts:
        bench_decode(model, args, device, fused=True, tag="+fp8")
    sync(device)


if __name__ == "__main__":
    main()
