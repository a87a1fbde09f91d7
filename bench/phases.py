"""Per-phase timing of the engine's prefill path, for the profile tables in BENCHMARKS.md.

Owns: `PhaseTimer`, which wraps, on one model/engine instance only, the functions that
make up a prefill step (preprocess+SigLIP, DTS+projector, context gather, LLM forward,
store+coarsen) with device-synchronised wall clocks, and a helper that runs
torch.profiler over a callable and returns the top kernels by device time.

Synchronising at every phase boundary serialises the GPU, so a profiled run is a little
slower than an unprofiled one: the phase split is what matters, not the total.
Does not: change any computation.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from bench.common import sync


class PhaseTimer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0

    def wrap(self, obj: Any, attr: str, phase: str) -> None:
        fn = getattr(obj, attr)

        def timed(*a, **kw):
            sync(self.device)
            t0 = time.perf_counter()
            self._depth += 1
            try:
                return fn(*a, **kw)
            finally:
                self._depth -= 1
                sync(self.device)
                self.seconds[phase] += time.perf_counter() - t0

        setattr(obj, attr, timed)

    def instrument(self, engine: Any) -> None:
        model = engine.model
        self.wrap(model, "frame_features", "vision: SigLIP (+resize to 24x24)")
        self.wrap(model, "groups_to_tokens", "vision: DTS + projector + pool")
        self.wrap(model, "encode_video", "vision: total (incl. preprocess)")
        self.wrap(engine, "prefill_context", "context: gather + rotate")
        self.wrap(engine.runner, "prefill", "LLM: chunk prefill")
        self.wrap(engine, "_store_chunks", "store: fine + coarsen + headers")
        self.wrap(engine, "step", "step: total")

    def table(self) -> dict[str, float]:
        s = dict(self.seconds)
        vis_total = s.pop("vision: total (incl. preprocess)", 0.0)
        s["vision: preprocess (resize, scale)"] = vis_total - s.get(
            "vision: SigLIP (+resize to 24x24)", 0.0) - s.get("vision: DTS + projector + pool", 0.0)
        step = s.pop("step: total", 0.0)
        s["python + embedding + other"] = step - vis_total - sum(
            v for k, v in s.items() if k.startswith(("context", "LLM", "store")))
        s["step: total"] = step
        return {k: round(v, 4) for k, v in s.items()}


def top_kernels(fn: Callable[[], Any], device: torch.device, n: int = 15) -> list[dict]:
    """Run fn under torch.profiler; the n kernels with most device time (ms, share)."""
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        fn()
        sync(device)
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", 0) if device.type == "cuda" else e.self_cpu_time_total
        if t > 0:
            rows.append((t, e.key, e.count))
    total = sum(r[0] for r in rows) or 1
    rows.sort(reverse=True)
    return [{"kernel": k[:90], "ms": round(t / 1e3, 2), "share": round(t / total, 3), "calls": c}
            for t, k, c in rows[:n]]
