"""The memory actor's path, measured: chunks per second through `MemoryCore` + `StepLoop`
(what `MemoryActor` runs: `on_chunk` only queues, the loop batches every camera's pending
chunk into one engine step and scores the standing questions of that step in one batch)
over the real `TieredChunkStore` built by the service's own `tiered_store`, with the
service's engine settings (the config's `engine` section at its defaults).

Beside it, in the same run and over the same kind of store:
- `engine`: every camera's chunk submitted to the engine directly, then steps until idle,
  no standing questions (the engine alone, the upper bound of the service's way);
- `per-chunk`: the way the service ran before: submit one chunk, step, score it.

Stores (`--stores`): `tiered`, the service's store at its defaults (write-behind, fine KV
on disk only for important chunks, every `--important-every`-th chunk here); `tiered-sync`,
the store as it was (every form written and fsynced inside the step); `memory`, the
engine's in-memory store (no disk). Each tiered row reports the disk GiB per camera-hour.

N cameras each deliver one 16-frame chunk per round (16 s of footage at 1 fps); chunks/s
x 16 s is the number of 1 fps cameras the path keeps up with. Random weights at the real
sizes on a GPU; `--quick` runs the tiny model on the CPU (CI smoke run).

    python bench/service_path.py [--quick] [--cameras 32] [--rounds 3] [--warm 2]
                                 [--stores tiered,memory] [--modes service,engine,per-chunk]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, peak_gib, pick_device, reset_peak, sync  # noqa: E402
from bench.prefill import build_ours  # noqa: E402
from model.engine.engine import Engine  # noqa: E402
from pipeline.alerts.ruleset import RuleSet  # noqa: E402
from pipeline.config import config_from_dict  # noqa: E402
from pipeline.memory.core import MemoryCore  # noqa: E402
from pipeline.memory.loop import StepLoop  # noqa: E402
from pipeline.memory.videoxl2 import tiered_store  # noqa: E402
from pipeline.messages import ModelChunk  # noqa: E402

CHUNK_SECONDS = 16.0
MODES = ("service", "engine", "per-chunk")


def frame_pool(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8) for _ in range(n)]


def is_important(cam: int, seq: int, every: int) -> bool:
    """Every `every`-th chunk (by camera and seq) counts as one with CV events."""
    return bool(every) and (cam + seq) % every == 0


def chunk(cam: int, seq: int, pool: list[np.ndarray], important_every: int = 0) -> ModelChunk:
    times = tuple(seq * CHUNK_SECONDS + i for i in range(16))
    return ModelChunk(f"c{cam}", seq, times, 1_795_000_000.0, pool[(cam + seq) % len(pool)],
                      is_important(cam, seq, important_every))


STORES = {  # name -> memory section (over the service's defaults)
    "tiered": {},  # the service's defaults: write-behind, fine KV of important chunks
    "tiered-sync": {"persist_fine": "all", "write_behind": False},  # before: every form,
    "memory": {},  # written inside the step; and the engine's in-memory store
}


def service_cfg(data_dir: Path, args, store: str):
    return config_from_dict({"data_dir": str(data_dir), "memory": {
        "gpu_gib": args.gpu_gib, "host_gib": args.host_gib, **STORES[store]}})


def standing_of(cfg):
    """The service's rule set over the config alone (no alert_rules table here)."""
    return RuleSet(cfg.alerts, None).standing


def run_service(model, cfg, args, pool, device) -> dict:
    core = MemoryCore(None, lambda: Engine(model, cfg.engine,
                                           make_store(cfg, device, args.store)),
                      standing_of(cfg))
    for cam in range(args.cameras):
        core.add_camera(f"c{cam}", "videoxl2")
    scores = []
    loop = StepLoop(core, scores.append, backlog_limit=cfg.engine.max_pending).start()

    def round_(seq: int) -> None:
        for cam in range(args.cameras):  # as MemoryActor.on_chunk does
            loop.submit(chunk(cam, seq, pool, args.important_every))
        while not core.idle():
            time.sleep(0.001)
        sync(device)

    try:
        out = timed_rounds(round_, args, device)
    finally:
        loop.stop()
    return {**out, "steps": core.counters["steps"], "standing_batches":
            core.counters["standing_batches"], "scores": len(scores),
            "kv": store_stats(core.engine, args)}


def run_engine(model, cfg, args, pool, device, per_chunk: bool) -> dict:
    eng = Engine(model, cfg.engine, make_store(cfg, device, args.store))
    standing = standing_of(cfg)

    def round_(seq: int) -> None:
        for cam in range(args.cameras):
            c = chunk(cam, seq, pool, args.important_every)
            eng.submit(c.camera, seq, c.model_frames, list(c.group_times), c.wall_origin)
            if per_chunk:  # the old service: step and score each chunk on arrival
                for r in eng.step():
                    eng.standing(r.camera, r.seq, [q for _, q in standing(r.camera)])
                    if c.important:
                        eng.mark_important(r.camera, r.seq)
        for r in eng.run_until_idle():
            if is_important(int(r.camera[1:]), r.seq, args.important_every):
                eng.mark_important(r.camera, r.seq)
        sync(device)

    out = timed_rounds(round_, args, device)
    return {**out, "steps": eng.counters["steps"], "kv": store_stats(eng, args)}


def store_stats(eng: Engine, args) -> dict:
    """Bytes per tier, the writer, and disk bytes per camera-hour at 1 fps (what the disk
    holds after every write landed, over the chunks each camera delivered, x 225)."""
    stats = getattr(eng.store, "stats", None)
    if stats is None:
        return {"kind": "memory"}
    flushed_in = time.perf_counter()
    eng.store.flush()
    out = stats()
    chunks_per_camera = args.warm + args.rounds
    disk = out["tiers"]["disk"]["used"]
    per_hour = disk / (args.cameras * chunks_per_camera) * 3600 / CHUNK_SECONDS
    return {"kind": "tiered", "tiers": out["tiers"], "counters": out["counters"],
            "lost": out["lost"], "writer": out.get("writer"),
            "flush_after_s": round(time.perf_counter() - flushed_in, 3),
            "disk_gib_per_camera_hour": round(per_hour / 2**30, 3)}


def make_store(cfg, device, kind: str):
    """The service's tiered store (`tiered_store`), or the engine's in-memory one, which
    writes nothing to disk (how far the disk tier's writes bound the path)."""
    if kind == "memory":
        from model.engine.store import InMemoryChunkStore

        return InMemoryChunkStore(device)
    return tiered_store(cfg, str(device))


def timed_rounds(round_, args, device) -> dict:
    for seq in range(args.warm):
        round_(seq)
    reset_peak(device)
    t0 = time.perf_counter()
    for seq in range(args.warm, args.warm + args.rounds):
        round_(seq)
    wall = time.perf_counter() - t0
    chunks = args.cameras * args.rounds
    return {"chunks": chunks, "seconds": round(wall, 3),
            "chunks_per_s": round(chunks / wall, 2),
            "cameras_1fps": round(chunks / wall * CHUNK_SECONDS, 1),
            "peak_gib": peak_gib(device)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model on the CPU (CI)")
    ap.add_argument("--cameras", type=int, default=None, help="cameras (default 32; 3 quick)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3; 1)")
    ap.add_argument("--warm", type=int, default=None, help="untimed rounds first (2; 1)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma list of {MODES}")
    ap.add_argument("--stores", default="tiered",
                    help=f"comma list of {', '.join(STORES)}")
    ap.add_argument("--important-every", type=int, default=10,
                    help="every n-th chunk is important (CV events), 0: none")
    ap.add_argument("--gpu-gib", type=float, default=8.0, help="memory.gpu_gib")
    ap.add_argument("--host-gib", type=float, default=8.0, help="memory.host_gib")
    args = ap.parse_args()
    args.cameras = args.cameras or (3 if args.quick else 32)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warm = args.warm if args.warm is not None else (1 if args.quick else 2)
    device = pick_device(args.quick)
    dtype = torch.float32 if args.quick else torch.bfloat16
    model = build_ours(device, args.quick, dtype)
    size = int(model.config.vision.image_size) if hasattr(model, "config") else 384
    pool = frame_pool(4 if args.quick else 8, size)
    runs = [(st, mode) for st in args.stores.split(",") for mode in args.modes.split(",")]
    for store, mode in runs:
        if mode not in MODES:
            raise SystemExit(f"--modes: unknown mode {mode!r}; expected {MODES}")
        if store not in STORES:
            raise SystemExit(f"--stores: unknown store {store!r}; expected {list(STORES)}")
        args.store = store
        with tempfile.TemporaryDirectory(prefix="xlwatch-bench-") as tmp:
            cfg = service_cfg(Path(tmp), args, store)
            if mode == "service":
                out = run_service(model, cfg, args, pool, device)
            else:
                out = run_engine(model, cfg, args, pool, device, per_chunk=mode == "per-chunk")
        emit("service_path", device, mode=mode, store=store, cameras=args.cameras,
             important_every=args.important_every, rounds=args.rounds,
             vision_ahead=cfg.engine.vision_ahead, camera_window=cfg.engine.camera_window,
             fused_blocks=cfg.engine.fused_blocks, **out)
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
