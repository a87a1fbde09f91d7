"""Building the video LLM's engine for a memory actor: the model from a local directory,
one `Engine` over a `TieredChunkStore` on the data dir (so a restarted actor recovers each
camera with `engine.recover`). It runs nothing: `pipeline.memory.core.MemoryCore` drives
the engine; attention, decoding and tiering live in model/engine and model/kv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GPU_SHARE = 0.5  # of the GPU memory free after loading the model, when gpu_gib is null
CPU_POOL_GIB = 2.0  # the "GPU" pool of a store on the CPU (tests, laptops)


def resolve_model_path(cfg: Any, model_path: Path | None = None) -> Path:
    path = model_path or cfg.model.path
    if path is None or not Path(path).is_dir():
        raise FileNotFoundError(f"model.path: not a checkpoint directory; got {path!r}")
    return Path(path)


def compute_device(cfg: Any, device: int | None) -> str:
    import torch

    gpu = device is not None and cfg.model.device != "cpu" and torch.cuda.is_available()
    return f"cuda:{device}" if gpu else "cpu"


def build_engine(cfg: Any, device: int | None, model_path: Path | None = None,
                 persist: bool = True) -> Any:
    """The engine a memory actor (or `analyze`, with persist=False) runs."""
    import torch

    from model import load_model
    from model.engine.engine import Engine

    dev = compute_device(cfg, device)
    dtype = getattr(torch, cfg.model.dtype) if dev != "cpu" else torch.float32
    model = load_model(resolve_model_path(cfg, model_path), device=dev, dtype=dtype)
    return Engine(model, cfg.engine, tiered_store(cfg, dev) if persist else None)


def gpu_pool_bytes(gpu_gib: float | None, device: str) -> int:
    """memory.gpu_gib, or when null a share of the GPU memory free right now."""
    from model.kv.policy import GIB

    if gpu_gib is not None:
        return int(gpu_gib * GIB)
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free * GPU_SHARE)
    return int(CPU_POOL_GIB * GIB)


def tiered_store(cfg: Any, device: str) -> Any:
    """The tiered store over `<data_dir>/kv` (the disk tier survives restarts)."""
    from model.kv.disk import DiskKVStore
    from model.kv.policy import GIB, TierConfig
    from model.kv.tiered import TieredChunkStore

    mem = cfg.memory
    tier = TierConfig(
        gpu_bytes=gpu_pool_bytes(mem.gpu_gib, device), host_bytes=int(mem.host_gib * GIB),
        disk_bytes=int(mem.disk_gib * GIB), fine_ttl_s=mem.fine_ttl_s,
        coarse_ttl_s=mem.coarse_ttl_s, prefill_chunks=cfg.engine.prev_chunks,
        persist_fine=mem.persist_fine, write_behind=mem.write_behind)
    return TieredChunkStore(tier, DiskKVStore(Path(cfg.data_dir) / "kv"), device,
                            codec=disk_codec(cfg))


def disk_codec(cfg: Any) -> Any:
    """FP8 on disk (memory.disk_dtype) after the coarse form's further pooling
    (memory.disk_coarse_ratio over engine.coarse_ratio)."""
    from model.engine.disk_forms import CoarseRepool
    from model.kv.codec import Chain, Fp8Codec

    return Chain(CoarseRepool(cfg.engine.coarse_ratio, cfg.memory.disk_coarse_ratio),
                 Fp8Codec(enabled=cfg.memory.disk_dtype == "fp8"))
