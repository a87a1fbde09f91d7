"""KV memory per camera-hour per tier at the real model sizes, checked against real files.

Computes, from the real layer shapes (28 layers, 4 KV heads, head dim 128, bf16; 144
visual slots plus the header tokens per group; 900 groups per camera-hour at 1 fps), the
bytes of fine KV and of coarse KV at r=4 and r=16, and what each tier holds per camera.
Then checks the formula against the files a tiny model really writes: the tiny checkpoint
runs the engine over a short clip into a TieredChunkStore, and the tensor bytes and file
sizes on disk are compared with the same formula at the tiny sizes.

Prints one JSON line and the command that reproduces it. CPU only; no GPU needed (the
figures are byte counts, not timings).

    PYTHONPATH=. python bench/memory.py [--clip PATH] [--chunks 2] [--header-tokens 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from model.kv.policy import GIB, TierConfig, chunk_tokens, kv_bytes
from model.kv.tiered import TieredChunkStore

REAL = {"layers": 28, "kv_heads": 4, "head_dim": 128, "dtype_bytes": 2}
SLOTS = 144
GROUPS_PER_CHUNK = 4
DESIGN_GIB = {"fine": 7.5, "coarse_r4": 2.2, "coarse_r16": 0.8}


def per_camera_hour(header_tokens: int, groups: int = 900, prefill_chunks: int = 3) -> dict:
    """Bytes per camera-hour by form, and the resident share of each tier."""
    def form_bytes(ratio: int, summary: bool) -> int:
        chunks = groups // GROUPS_PER_CHUNK
        tokens = chunk_tokens(groups, header_tokens, SLOTS, ratio)
        extra = chunks * REAL["layers"] * REAL["kv_heads"] * REAL["head_dim"] \
            * REAL["dtype_bytes"] if summary else 0
        return kv_bytes(REAL["layers"], REAL["kv_heads"], REAL["head_dim"], tokens,
                        REAL["dtype_bytes"]) + extra

    fine, c4, c16 = form_bytes(1, False), form_bytes(4, True), form_bytes(16, True)
    chunk_fine = fine // (groups // GROUPS_PER_CHUNK)
    return {
        "bytes_per_token": kv_bytes(REAL["layers"], REAL["kv_heads"], REAL["head_dim"], 1,
                                    REAL["dtype_bytes"]),
        "fine_chunk_mib": round(chunk_fine / 2**20, 2),
        "fine_gib": round(fine / GIB, 3),
        "coarse_r4_gib": round(c4 / GIB, 3),
        "coarse_r16_gib": round(c16 / GIB, 3),
        # Tier shares per camera under the default policy (write-through disk):
        "gpu_prefill_window_gib": round((prefill_chunks + 1) * chunk_fine / GIB, 3),
        "gpu_coarse_window_r4_gib_per_hour_kept": round(c4 / GIB, 3),
        "disk_gib_per_hour_fine_plus_coarse_r4": round((fine + c4) / GIB, 3),
        "disk_gib_per_day_retained_r4": round((24 * (fine + c4)) / GIB, 1),
        "disk_gib_30_days_coarse_r4_only": round(30 * 24 * c4 / GIB, 1),
    }


def sample_frames(clip: Path | None, n: int) -> np.ndarray:
    if clip is None or not clip.exists():
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 384, 384, 3), dtype=np.uint8)
    import av

    out = []
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return np.stack(out)


def tiny_check(clip: Path | None, chunks: int) -> dict:
    """Run the tiny model; compare bytes on disk with the formula at tiny sizes."""
    from model import load_model
    from model.engine.engine import Engine, EngineConfig
    from model.tiny import make_tiny_checkpoint

    frames = sample_frames(clip, 16 * chunks)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(make_tiny_checkpoint(Path(tmp) / "ckpt"))
        text = model.config.text
        dtype_bytes = torch.tensor([], dtype=model.dtype).element_size()
        shapes = (text.num_hidden_layers, text.num_key_value_heads, text.head_dim)
        for ratio in (4, 16):
            store = TieredChunkStore(TierConfig(prefill_chunks=1), Path(tmp) / f"kv{ratio}")
            engine = Engine(model, EngineConfig(prev_chunks=1, coarse_ratio=ratio), store)
            headers = 0
            for seq in range(chunks):
                times = [float(t) for t in range(16 * seq, 16 * seq + 16, 4)]
                headers += sum(len(model.prompt.header_ids(t)) for t in times)
                engine.submit("cam", seq, frames[16 * seq:16 * seq + 16], times, 0.0)
            engine.run_until_idle()
            files = {cf.form: [0, 0] for cf in store.disk.scan()}
            for cf in store.disk.scan():
                files[cf.form][0] += cf.nbytes
                files[cf.form][1] += cf.file_bytes
            groups = GROUPS_PER_CHUNK * chunks
            fine = kv_bytes(*shapes, headers + groups * SLOTS, dtype_bytes)
            coarse = kv_bytes(*shapes, headers + groups * SLOTS // ratio, dtype_bytes) \
                + chunks * shapes[0] * shapes[1] * shapes[2] * dtype_bytes
            if ratio == 4:
                out["fine"] = {"formula_bytes": fine, "tensor_bytes": files["fine"][0],
                               "file_bytes": files["fine"][1]}
            out[f"coarse_r{ratio}"] = {"formula_bytes": coarse,
                                       "tensor_bytes": files["coarse"][0],
                                       "file_bytes": files["coarse"][1]}
    for row in out.values():
        row["tensor_matches_formula"] = row["tensor_bytes"] == row["formula_bytes"]
        row["file_overhead"] = round(row["file_bytes"] / row["formula_bytes"] - 1, 4)
    out["tiny_shapes"] = {"layers": shapes[0], "kv_heads": shapes[1], "head_dim": shapes[2],
                          "dtype_bytes": dtype_bytes, "chunks": chunks}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=Path(__file__).resolve().parents[2]
                    / "shared" / "data" / "vtest.avi")
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--header-tokens", type=int, default=8,
                    help="tokens of one 'Time {t:.1f}s:' header (DESIGN: 608-token chunks)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    real = per_camera_hour(args.header_tokens)
    tiny = tiny_check(args.clip if args.clip.exists() else None, args.chunks)
    ok = all(r["tensor_matches_formula"] for k, r in tiny.items() if k != "tiny_shapes")
    result = {
        "bench": "memory", "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "host": f"{platform.machine()} {platform.processor() or platform.system()}",
        "per_camera_hour_real": real, "design_reference_gib": DESIGN_GIB,
        "tiny_files_check": tiny, "formula_matches_files": ok,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))
    print("command: PYTHONPATH=. python bench/memory.py " + shlex.join(argv or sys.argv[1:]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
