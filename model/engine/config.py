"""EngineConfig: the engine's settings, and the one definition of the config's `engine`
section (pipeline/config.py validates YAML straight into it). Torch-free, so reading the
config never imports torch. Speed settings change no values; the others shape the memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EngineConfig:
    # Validated by pydantic as the config tree's `engine` section: unknown keys refused.
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    prev_chunks: int | None = 3  # p; None: every previous chunk dense (tests)
    max_headers: int | None = 256  # H; None: every older header
    coarse_ratio: int = 4
    top_k: int = 8
    token_budget: int = 16384
    max_new_tokens: int = 64
    positions: Literal["contiguous", "original"] = "contiguous"  # prefill rotation
    max_batch: int = 16  # chunks per step
    # consecutive chunks of one camera prefilled in one step when its queue holds several
    # (a recorded file, a camera catching up): their dependencies are resolved layer by
    # layer inside the step (model.engine.layout), so a backfill runs its matrix products
    # over up to max_batch chunks at once. 1: one chunk per camera per step.
    camera_window: int = 16
    # per camera; beyond, the oldest chunk is dropped and counted (one backfill window)
    max_pending: int = 16
    # summary keys held per camera for one-product relevance (28 KiB each at real sizes in
    # bf16: 4096 = 112 MiB, 18 h at 1 fps); older ones are re-read from the store if asked
    summary_capacity: int = 4096
    # chunks whose vision features are encoded ahead in one large batch when a step finds
    # its chunks not yet encoded (pending chunks of any camera, oldest first). 0: encode
    # only the step's own chunks. A long recorded video or many cameras then feed SigLIP
    # hundreds of frames per call instead of one step's worth.
    vision_ahead: int = 32
    # run each decoder layer as two fused blocks (model.engine.blocks), torch.compile'd on
    # CUDA: far fewer kernel launches per chunk and per decoded token. Off: module by module.
    fused_blocks: bool = True
    # decode steps of a question from a captured CUDA graph (model.engine.graphs) on CUDA;
    # no effect on the CPU
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        for name in ("prev_chunks", "max_headers"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name}: must be >= 0 or None; got {v!r}")
        if not isinstance(self.vision_ahead, int) or self.vision_ahead < 0:
            raise ValueError(f"vision_ahead: must be an integer >= 0; got {self.vision_ahead!r}")
        for name in ("coarse_ratio", "top_k", "token_budget", "max_new_tokens", "max_batch",
                     "max_pending", "summary_capacity", "camera_window"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive integer; got {v!r}")
        if self.positions not in ("contiguous", "original"):
            raise ValueError(f"positions: must be 'contiguous' or 'original'; "
                             f"got {self.positions!r}")
