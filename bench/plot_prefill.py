"""docs/prefill.png: prefill time against frames, ours and the transformers reference,
from the JSON lines the GPU runs printed (docs/gpu-run-perf.jsonl). CPU only.

    python bench/plot_prefill.py [--jsonl docs/gpu-run-perf.jsonl] [--out docs/prefill.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = {  # label -> (bench, variant, command must contain)
    "ours, bf16 eager (vision ahead 32)": ("prefill.ours", "bf16", "--vision-ahead 32"),
    "ours, bf16 + compiled vision + fused blocks": ("prefill.ours", "compile+blocks", ""),
    "ours, FP8 linear (eager quantisation)": ("prefill.ours", "fp8+compile", ""),
    "reference: transformers SigLIP + dense Qwen2": ("prefill.reference", None, ""),
}


def load(path: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {k: {} for k in SERIES}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        for label, (bench, variant, needle) in SERIES.items():
            if d["bench"] == bench and d.get("variant") == variant and needle in d["command"]:
                out[label][d["frames"]] = d["seconds"]  # later runs replace earlier ones
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jsonl", type=Path, default=Path("docs/gpu-run-perf.jsonl"))
    ap.add_argument("--out", type=Path, default=Path("docs/prefill.png"))
    args = ap.parse_args()
    data = load(args.jsonl)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label, pts in data.items():
        if pts:
            xs = sorted(pts)
            ax.plot(xs, [pts[x] for x in xs], marker="o", label=label)
    ax.axhline(4.5, color="grey", ls=":", lw=1)
    ax.annotate("target 2048 frames <= 4.5 s (bf16)", (2100, 4.7), fontsize=7, color="grey")
    ax.set_xlabel("frames (384 x 384, on the GPU)")
    ax.set_ylabel("seconds to a complete KV memory")
    ax.set_title("Prefill on one H100 80GB (random bf16 weights, real sizes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
