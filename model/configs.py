"""Typed, frozen configuration of the Video-XL-2 model and its parts.

Owns: the dataclasses that describe sizes (text decoder, SigLIP tower, DTS, projector) and
the mapping between them and a checkpoint's `config.json` in the released layout (Qwen2
keys at the top level, `mm_*` keys beside them). The released config refers to the vision
tower by name only, so absent vision and DTS sections default to SigLIP-so400m-384 sizes
with the last layer already dropped (26 layers kept).

Does not: read files (see model.checkpoint) or build modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

VISION_PAD_TOKEN = "<|vision_pad|>"


class ConfigError(ValueError):
    """A config.json field is missing or has a bad value; the message names it."""


@dataclass(frozen=True)
class TextConfig:
    """Qwen2 decoder sizes (names as in transformers' Qwen2Config)."""

    vocab_size: int = 152064
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    head_dim: int = 128
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768

    def __post_init__(self) -> None:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(f"head_dim={self.head_dim} must be even for rotary embeddings")


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP vision tower sizes. `num_hidden_layers` counts the layers KEPT in the
    checkpoint (the released model drops the last of so400m's 27)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_attention_heads: int = 16
    num_hidden_layers: int = 26
    image_size: int = 384
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class DTSConfig:
    """Dynamic token synthesis (`model.sae`): channels equal the vision hidden size."""

    channels: int = 1152
    group_frames: int = 4
    num_groups: int = 32
    max_relative_position: int = 64
    temporal_stride: int = 2


@dataclass(frozen=True)
class VideoXL2Config:
    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    dts: DTSConfig = field(default_factory=DTSConfig)
    mm_projector_type: str = "mlp2x_gelu"
    feature_grid: int = 24  # 729 SigLIP tokens are resized to 24 x 24 = 576
    pool_stride: int = 2  # 2x2 average pooling: 144 tokens per 4-frame group

    def __post_init__(self) -> None:
        if self.mm_projector_type != "mlp2x_gelu":
            raise ConfigError(f"mm_projector_type={self.mm_projector_type!r}: only mlp2x_gelu")
        if self.dts.channels != self.vision.hidden_size:
            raise ConfigError(
                f"dts channels={self.dts.channels} != vision hidden_size={self.vision.hidden_size}"
            )
        if self.feature_grid % self.pool_stride:
            raise ConfigError(f"feature_grid={self.feature_grid} not divisible by pool_stride")

    @property
    def tokens_per_group(self) -> int:
        return (self.feature_grid // self.pool_stride) ** 2

    def to_json_dict(self) -> dict[str, Any]:
        """The released config.json form, plus explicit vision and DTS sections."""
        t = self.text
        return {
            "architectures": ["LlavaQwenForCausalLM"],
            "model_type": "llava_qwen",
            "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size,
            "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads,
            "head_dim": t.head_dim,
            "rope_theta": t.rope_theta,
            "rms_norm_eps": t.rms_norm_eps,
            "max_position_embeddings": t.max_position_embeddings,
            "hidden_act": "silu",
            "tie_word_embeddings": False,
            "mm_hidden_size": self.vision.hidden_size,
            "mm_projector_type": self.mm_projector_type,
            "mm_vision_tower": "google/siglip-so400m-patch14-384",
            "mm_spatial_pool_stride": self.pool_stride,
            "mm_spatial_pool_mode": "average",
            "mm_patch_merge_type": "unires",
            "vision_config": asdict(self.vision),
            "dts_config": asdict(self.dts),
        }

    @classmethod
    def from_json_dict(cls, raw: dict[str, Any]) -> VideoXL2Config:
        text_kwargs = {f.name: raw[f.name] for f in fields(TextConfig) if f.name in raw}
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            if name not in raw:
                raise ConfigError(f"config.json: required field {name!r} is missing")
        text_kwargs.setdefault("num_key_value_heads", raw["num_attention_heads"])
        text_kwargs.setdefault("head_dim", raw["hidden_size"] // raw["num_attention_heads"])
        if raw.get("tie_word_embeddings"):
            raise ConfigError("config.json: tie_word_embeddings=True is not supported")
        vision = VisionConfig(**_section(raw, "vision_config", VisionConfig))
        if "mm_hidden_size" in raw and raw["mm_hidden_size"] != vision.hidden_size:
            raise ConfigError(
                f"config.json: mm_hidden_size={raw['mm_hidden_size']} != vision hidden_size "
                f"{vision.hidden_size}"
            )
        dts_kwargs = _section(raw, "dts_config", DTSConfig)
        dts_kwargs.setdefault("channels", vision.hidden_size)
        mode = raw.get("mm_spatial_pool_mode", "average")
        if mode != "average":
            raise ConfigError(f"config.json: mm_spatial_pool_mode={mode!r}: only 'average'")
        return cls(
            text=TextConfig(**text_kwargs),
            vision=vision,
            dts=DTSConfig(**dts_kwargs),
            mm_projector_type=raw.get("mm_projector_type", "mlp2x_gelu"),
            pool_stride=int(raw.get("mm_spatial_pool_stride", 2)),
        )


def _section(raw: dict[str, Any], key: str, kind: type) -> dict[str, Any]:
    section = raw.get(key) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config.json: {key}={section!r} is not an object")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"config.json: unknown keys in {key}: {unknown}")
    return dict(section)
