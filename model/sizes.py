"""Real Video-XL-2 sizes and model-size arithmetic.

Owns: `real_config()` (BAAI/Video-XL-2: SigLIP-so400m-384 with 26 of 27 layers kept, DTS on
1152 channels, Qwen2.5-7B decoder), parameter counts per part and memory estimates.

Does not: build modules (model.checkpoint.build_random does) or read files.
"""

from __future__ import annotations

from collections.abc import Iterable

from model.configs import DTSConfig, TextConfig, VideoXL2Config, VisionConfig

PARTS = ("vision_tower", "sae", "mm_projector", "llm")


def real_config() -> VideoXL2Config:
    return VideoXL2Config(text=TextConfig(), vision=VisionConfig(), dts=DTSConfig())


def part_of(key: str) -> str:
    """Which part a checkpoint key belongs to: vision_tower, sae, mm_projector or llm."""
    for part in PARTS[:3]:
        if key.startswith(f"model.{part}."):
            return part
    return "llm"


def count_by_part(shapes: Iterable[tuple[str, tuple[int, ...]]]) -> dict[str, int]:
    counts = dict.fromkeys(PARTS, 0)
    for key, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        counts[part_of(key)] += n
    return counts


def kv_bytes_per_token(cfg: VideoXL2Config, bytes_per_value: int = 2) -> int:
    t = cfg.text
    return t.num_hidden_layers * 2 * t.num_key_value_heads * t.head_dim * bytes_per_value
