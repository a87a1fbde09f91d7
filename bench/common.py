"""Shared benchmark plumbing: device pick, CUDA-event timing (median of repeats), peak
memory, hardware description, and the one-JSON-line output every benchmark prints.

No timing is ever asserted: CI runs the scripts with `--quick` on the CPU as smoke tests.
"""

from __future__ import annotations

import json
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch


def pick_device(quick: bool) -> torch.device:
    if not quick and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU; use --quick for a CPU smoke run")
    return torch.device("cuda" if torch.cuda.is_available() and not quick else "cpu")


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs)"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], Any], device: torch.device, warmup: int = 1, repeat: int = 3) -> dict:
    """Median wall time of `fn` in seconds (CUDA events on GPU, perf_counter on CPU)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": len(times)}


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def emit(bench: str, device: torch.device, **fields: Any) -> dict:
    """Print one JSON line with the benchmark's figures, hardware, date and command."""
    record = {
        "bench": bench,
        **fields,
        "hardware": hardware(device),
        "torch": torch.__version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    print(json.dumps(record), flush=True)
    return record
