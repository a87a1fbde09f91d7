"""GPU check (not a timing): the code that CI runs on the CPU also runs on the GPU.

1. A tiny checkpoint gives the same memory and answers in bf16 on the GPU as in fp32 on
   the CPU, within bf16 tolerance: relative error of every chunk's fine KV, the standing
   question's P(Yes), and the greedy answer text (reported, not required to match: a
   random tiny model's top tokens can be near ties).
   Beside it, a backfill step of eight chunks (packed variable-length attention, flash on
   CUDA) against the masked path and against chunk-by-chunk steps on the same device.
2. The tiered KV store (GPU slab, pinned host slab, disk) spills and loads real-size
   chunks bit-identical on the device.
3. A random model at the real Video-XL-2 sizes builds directly on the GPU, is written as
   a sharded checkpoint, and `xlwatch model info` reads it back (about 8.1 B parameters).

    python bench/gpu_check.py [--quick] [--skip-real]
--quick runs part 1 with the "GPU" side on the CPU in bf16 (a smoke run for CI).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, pick_device  # noqa: E402
from model import load_model  # noqa: E402
from model.engine.engine import Engine, EngineConfig  # noqa: E402
from model.tiny import make_tiny_checkpoint  # noqa: E402

QUESTION = "When did a person enter?"
STANDING = ["Is anyone fighting or lying on the floor? Answer yes or no."]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def run_engine(path: Path, device: str, dtype: torch.dtype, frames: np.ndarray) -> dict:
    model = load_model(path, device=device, dtype=dtype)
    eng = Engine(model, EngineConfig())
    for seq in range(frames.shape[0] // 16):
        clip = frames[seq * 16:(seq + 1) * 16]
        eng.submit("cam", seq, clip, [seq * 16.0 + 4 * g for g in range(4)], 0.0)
    eng.run_until_idle()
    answer = eng.ask("cam", QUESTION)
    fines = [eng.store.get(("cam", s), "fine") for s in eng.store.seqs("cam")]
    p_yes = eng.standing("cam", max(eng.store.seqs("cam")), STANDING)
    return {"text": answer.text, "fines": [{k: v.float().cpu() for k, v in f.items()} for f in fines],
            "p_yes": p_yes, "chunks_used": answer.chunks_used}


def tiny_parity(device: torch.device, tmp: Path) -> dict:
    path = make_tiny_checkpoint(tmp / "tiny", seed=0)
    frames = np.random.default_rng(0).integers(0, 256, (64, 384, 384, 3), dtype=np.uint8)
    ref = run_engine(path, "cpu", torch.float32, frames)
    got = run_engine(path, device.type, torch.bfloat16, frames)
    kv_err = max(max(rel_err(g[k], r[k]) for k in ("k", "v"))
                 for g, r in zip(got["fines"], ref["fines"], strict=True))
    return {"kv_rel_err_max": kv_err,
            "p_yes_cpu_fp32": ref["p_yes"], "p_yes_bf16": got["p_yes"],
            "p_yes_abs_diff": max(abs(a - b) for a, b in zip(got["p_yes"], ref["p_yes"], strict=True)),
            "answer_cpu_fp32": ref["text"], "answer_bf16": got["text"],
            "answers_equal": ref["text"] == got["text"],
            "chunks_used_equal": ref["chunks_used"] == got["chunks_used"]}


def window_parity(device: torch.device, tmp: Path) -> dict:
    """Eight chunks of one camera prefilled in one step (camera_window 8, p = 3, H = 2, so
    a chunk's context holds same-step chunks dense and by their headers): the packed
    variable-length attention path (flash on CUDA) against the masked SDPA path, both on
    `device` in the model's dtype, and against chunk-by-chunk steps."""
    path = make_tiny_checkpoint(tmp / "tiny_w", seed=1)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = load_model(path, device=device.type, dtype=dtype)
    frames = np.random.default_rng(1).integers(0, 256, (128, 384, 384, 3), dtype=np.uint8)
    fines = {}
    for name, window, fast in (("packed", 8, True), ("masked", 8, False), ("stepwise", 1, True)):
        eng = Engine(model, EngineConfig(prev_chunks=3, max_headers=2, camera_window=window))
        eng.runner.fast_attention = fast and device.type == "cuda"
        for seq in range(8):
            eng.submit("cam", seq, frames[seq * 16:(seq + 1) * 16],
                       [seq * 16.0 + 4 * g for g in range(4)], 0.0)
        eng.run_until_idle()
        fines[name] = [eng.store.get(("cam", s), "fine") for s in range(8)]
        fines[name + "_steps"] = eng.counters["steps"]

    def worst(a: str, b: str) -> float:
        return max(rel_err(x[n], y[n]) for x, y in zip(fines[a], fines[b], strict=True)
                   for n in ("k", "v"))

    return {"dtype": str(dtype).removeprefix("torch."), "steps_packed": fines["packed_steps"],
            "steps_stepwise": fines["stepwise_steps"],
            "kv_rel_err_packed_vs_masked": worst("packed", "masked"),
            "kv_rel_err_packed_vs_stepwise": worst("packed", "stepwise")}


def real_size(tmp: Path) -> dict:
    from model.checkpoint import build_random, write_checkpoint
    from model.sizes import real_config

    model = build_random(real_config(), device="cuda", dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    out = tmp / "real"
    write_checkpoint(model, out)
    del model
    torch.cuda.empty_cache()
    info = subprocess.run([sys.executable, "-c", "from pipeline.app.cli import main; main()",
                           "model", "info", str(out), "--json"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    parsed = json.loads(info.stdout) if info.returncode == 0 else {"error": info.stderr[-2000:]}
    return {"params_built": n_params, "model_info": parsed}


def tiers_roundtrip(device: torch.device, tmp: Path) -> dict:
    """Tiered KV store on the real device: preallocated GPU slab, pinned host slab (on
    CUDA), disk; spill everything down and load it back bit-identical."""
    from model.kv.index import Tier
    from model.kv.policy import TierConfig
    from model.kv.tiered import TieredChunkStore

    shape = (28, 4, 608, 128)  # one real-size chunk's fine K (and V): 34 MiB in bf16
    chunk = 2 * int(np.prod(shape)) * 2
    cfg = TierConfig(gpu_bytes=2 * chunk, host_bytes=2 * chunk, disk_bytes=100 * chunk,
                     prefill_chunks=1, gpu_coarse_chunks=0, write_through=False)
    store = TieredChunkStore(cfg, tmp / "kv", device=device, preallocate=True)
    made = {}
    for seq in range(6):
        g = torch.Generator(device=device).manual_seed(seq)
        kv = {n: torch.randn(shape, generator=g, device=device).to(torch.bfloat16) for n in "kv"}
        made[seq] = {n: t.clone() for n, t in kv.items()}
        store.put(("cam", seq), "fine", kv, {"seq": str(seq)})
    tiers = [store.where(("cam", s), "fine").name for s in range(6)]
    identical, on_device = True, True
    for seq in range(6):
        got = store.get(("cam", seq), "fine")
        on_device &= all(t.device.type == device.type for t in got.values())
        identical &= all(torch.equal(got[n], made[seq][n]) for n in "kv")
        store.check_integrity()
    counters = store.stats()["counters"]
    return {"tiers_after_puts": tiers, "bit_identical": identical, "returned_on_device": on_device,
            "spills": counters.get("spills", 0), "loads": counters.get("loads", 0),
            "disk_seen": Tier.DISK.name in tiers, "host_seen": Tier.HOST.name in tiers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--tiers-only", action="store_true")
    args = ap.parse_args()
    device = pick_device(args.quick)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        emit("gpu_check.tiers_roundtrip", device, **tiers_roundtrip(device, tmp))
        if args.tiers_only:
            return
        emit("gpu_check.tiny_parity", device, **tiny_parity(device, tmp))
        emit("gpu_check.window_parity", device, **window_parity(device, tmp))
        if device.type == "cuda" and not args.skip_real:
            emit("gpu_check.real_size", device, **real_size(tmp))


if __name__ == "__main__":
    main()
