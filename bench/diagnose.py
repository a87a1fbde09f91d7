"""Diagnostics behind the component figures: where a chunk's and a token's time goes.

    python bench/diagnose.py            # H100
    python bench/diagnose.py --quick    # CPU smoke run (CI)

Parts (one JSON line each; CUDA-event medians):
- `diagnose.chunk_launch`: one 640-token chunk through the 28 fused, compiled layers over
  a 4,300-token context: the CPU time to issue it (no sync), the time to finish it, and the
  same forward captured in one CUDA graph and replayed (what launch overhead costs).
- `diagnose.attention`: that chunk's attention alone (28 query heads over 4 KV heads,
  lower-right causal) with each kernel PyTorch offers: flash (native GQA), cuDNN with an
  additive mask over expanded KV heads, FlexAttention (compiled, GQA, block mask).
  `--chunk 24 --context 16384 --kernels --parts chunk_launch` is a question's prefill.
- `diagnose.gemv`: one decode token's MLP product (1 x 3584 by 18944 x 3584) as
  F.linear with 1 row, with the row padded to 16, and as torch.mv, against the bandwidth
  floor; and the top kernels of one eager decode step over 16,384 tokens of context.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, pick_device, sync, time_fn  # noqa: E402
from bench.components import context_kv  # noqa: E402
from bench.phases import top_kernels  # noqa: E402
from bench.prefill import build_ours  # noqa: E402
from model.engine.graphs import capture  # noqa: E402
from model.engine.runner import KVBuffer, Runner  # noqa: E402


def chunk_launch(model, args, device) -> None:
    runner = Runner(model)
    runner.use_blocks(compile=device.type == "cuda")
    d = runner.dims
    g = torch.Generator(device=device).manual_seed(0)
    k, v = context_kv(runner, args.context, g)
    emb = torch.randn(1, args.chunk, d.hidden, generator=g, device=device).to(runner.dtype)
    pos = (args.context + torch.arange(args.chunk, device=device))[None]
    buf = KVBuffer.from_contexts([k], [v], extra=args.chunk)

    def run():
        buf.length = args.context
        runner.forward(emb, pos, buf)

    t = time_fn(run, device, warmup=3, repeat=args.repeat)
    sync(device)
    t0 = time.perf_counter()
    run()
    issued = time.perf_counter() - t0
    sync(device)
    done = time.perf_counter() - t0
    graph_ms = None
    if device.type == "cuda":
        graph = capture(run, warmup=1)
        graph_ms = time_fn(graph.replay, device, warmup=2, repeat=args.repeat)["median_s"] * 1e3
    emit("diagnose.chunk_launch", device, tokens=args.chunk, context=args.context,
         ms=t["median_s"] * 1e3, cpu_issue_ms=issued * 1e3, wall_ms=done * 1e3,
         graph_replay_ms=graph_ms, top=top_kernels(run, device, n=12) if args.kernels else None)


def attention(args, device, dtype) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right

    g = torch.Generator(device=device).manual_seed(1)
    t, s = args.chunk, args.context + args.chunk
    hq, hkv, dh = (28, 4, 128) if not args.quick else (4, 2, 16)
    q = torch.randn(1, hq, t, dh, generator=g, device=device).to(dtype)
    k = torch.randn(1, hkv, s, dh, generator=g, device=device).to(dtype)
    v = torch.randn(1, hkv, s, dh, generator=g, device=device).to(dtype)
    kx, vx = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
    allowed = torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)
    bias = torch.zeros(t, s, dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))
    ref = F.scaled_dot_product_attention(q, kx, vx, attn_mask=allowed)
    flops = 4 * t * (s - t / 2) * hq * dh

    def flash():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(t, s),
                                              enable_gqa=True)

    def cudnn_expanded():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(q, kx, vx, attn_mask=bias)

    def cudnn_expand_inside():
        kk, vv = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(q, kk, vv, attn_mask=bias)

    cands = {"flash_gqa_lower_right": flash, "cudnn_mask_expanded_kv": cudnn_expanded,
             "cudnn_mask_expand_each_call": cudnn_expand_inside}
    if device.type == "cuda":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def lower_right(b, h, qi, ki):
            return ki <= qi + (s - t)

        block = create_block_mask(lower_right, 1, 1, t, s, device=device)
        flex = torch.compile(flex_attention)
        cands["flex_gqa_block_mask"] = lambda: flex(q, k, v, block_mask=block, enable_gqa=True)
    for name, fn in cands.items():
        try:
            with torch.inference_mode():
                out = fn()
                err = float((out.float() - ref.float()).norm() / ref.float().norm())
                ms = time_fn(fn, device, warmup=2, repeat=args.repeat)["median_s"] * 1e3
            emit("diagnose.attention", device, kernel=name, tokens=t, keys=s, ms=ms,
                 tflops=flops / ms / 1e9, rel_err=err)
        except Exception as e:  # a kernel this build lacks is a finding, not a failure
            emit("diagnose.attention", device, kernel=name, error=f"{type(e).__name__}: "
                 f"{str(e)[:200]}")


def gemv(model, args, device) -> None:
    w = model.model.layers[0].mlp.gate_proj.weight.detach()
    x = torch.randn(1, w.shape[1], device=device, dtype=w.dtype)
    x16 = torch.nn.functional.pad(x, (0, 0, 0, 15))
    floor_ms = w.numel() * w.element_size() / 3.35e12 * 1e3
    cands = {"linear_1_row": lambda: F.linear(x, w), "linear_16_rows": lambda: F.linear(x16, w),
             "mv": lambda: torch.mv(w, x[0]), "matmul_wT": lambda: x @ w.t()}
    for name, fn in cands.items():
        with torch.inference_mode():
            ms = time_fn(fn, device, warmup=3, repeat=args.repeat * 4)["median_s"] * 1e3
        emit("diagnose.gemv", device, variant=name, shape=list(w.shape), ms=ms,
             gb_per_s=w.numel() * w.element_size() / ms / 1e6, floor_ms_at_3_35_tb_s=floor_ms)
    runner = Runner(model)
    d = runner.dims
    k = torch.randn(d.n_layers, d.n_kv_heads, args.decode_context, d.head_dim, device=device,
                    dtype=runner.dtype)
    buf = KVBuffer.from_contexts([k], [k], extra=4)
    emb = runner.embed(torch.tensor([[1]], device=device))
    pos = torch.tensor([[args.decode_context]], device=device)

    def step():
        buf.length = args.decode_context
        runner.forward(emb, pos, buf, logits_at=torch.tensor([0]))

    ms = time_fn(step, device, warmup=2, repeat=args.repeat)["median_s"] * 1e3
    emit("diagnose.decode_step", device, context=args.decode_context, ms=ms,
         top=top_kernels(step, device, n=20))


def main() -> None:
    ap = argparse.ArgumentParser(description="where a chunk's and a token's time goes")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--context", type=int, default=4300)
    ap.add_argument("--chunk", type=int, default=640)
    ap.add_argument("--decode-context", type=int, default=16384)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kernels", action="store_true", help="top kernels of the chunk forward")
    ap.add_argument("--parts", default="attention,gemv,chunk_launch")
    args = ap.parse_args()
    device = pick_device(args.quick)
    if args.quick:
        args.context, args.chunk, args.decode_context, args.repeat = 40, 16, 64, 1
    dtype = torch.float32 if args.quick else torch.bfloat16
    parts = args.parts.split(",")
    if "attention" in parts:
        attention(args, device, dtype)
    model = build_ours(device, args.quick, dtype)
    if "gemv" in parts:
        gemv(model, args, device)
    if "chunk_launch" in parts:
        chunk_launch(model, args, device)


if __name__ == "__main__":
    main()
