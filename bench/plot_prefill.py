"""docs/prefill.png: prefill time against frames, ours and the transformers reference,
from the JSON lines the GPU runs printed (docs/gpu-run-perf.jsonl: first build;
docs/gpu-run-2.jsonl: fused projections, arena buffers, channels-last DTS;
docs/gpu-run-3.jsonl: backfill steps, packed attention, resize as products). CPU only.

    python bench/plot_prefill.py [--docs docs] [--out docs/prefill.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = {  # label -> (file, bench, variant, the command contains one of these)
    "first build, compiled vision + blocks": ("gpu-run-perf.jsonl", "prefill.ours",
                                              "compile+blocks", ("",)),
    "run 2: fused q/k/v + gate/up, arena, channels-last DTS": (
        "gpu-run-2.jsonl", "prefill.ours", "compile+blocks",
        ("--sizes 512,1024,2048,4096", "--sizes 2048,10000 --variants compile+blocks")),
    "run 3: 16-chunk backfill steps, packed flash, resize as products": (
        "gpu-run-3.jsonl", "prefill.ours", "compile+blocks",
        ("--sizes 512,1024,2048,4096", "--sizes 2048,10000")),
    "run 3 + FP8 LLM layers": (
        "gpu-run-3.jsonl", "prefill.ours", "compile+blocks+fp8llm", ("",)),
    "reference: transformers SigLIP + dense Qwen2 (run 3)": (
        "gpu-run-3.jsonl", "prefill.reference", None, ("--sizes 512,1024,2048,4096",)),
}


def load(docs: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {k: {} for k in SERIES}
    for label, (name, bench, variant, needles) in SERIES.items():
        for line in (docs / name).read_text().splitlines():
            d = json.loads(line)
            if (d["bench"] == bench and d.get("variant") == variant
                    and any(n in d["command"] for n in needles)):
                out[label][d["frames"]] = d["seconds"]  # later runs replace earlier ones
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, default=Path("docs"))
    ap.add_argument("--out", type=Path, default=Path("docs/prefill.png"))
    args = ap.parse_args()
    data = load(args.docs)
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
