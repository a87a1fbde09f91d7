"""Plain-transformers references at the real Video-XL-2 sizes, measured beside our engine
in the same run: SigLIP-so400m (26 layers kept) over every frame, and one dense Qwen2.5-7B
causal prefill over the whole video's token sequence (only the last position's logits).

Random weights (speed does not depend on weight values), built directly on the device.
"""

from __future__ import annotations

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

TOKENS_PER_GROUP = 144
FRAMES_PER_GROUP = 4


def siglip_config(quick: bool) -> SiglipVisionConfig:
    if quick:
        return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, image_size=384, patch_size=14)
    # so400m-patch14-384 with the last of 27 layers dropped (Video-XL-2 uses layer 26's output).
    return SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26,
                              num_attention_heads=16, image_size=384, patch_size=14)


def qwen2_config(quick: bool) -> Qwen2Config:
    if quick:
        return Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           rope_theta=1e6, max_position_embeddings=1 << 20)
    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                       num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                       rope_theta=1e6, max_position_embeddings=1 << 20, tie_word_embeddings=False)


def build_siglip(device: torch.device, dtype: torch.dtype, quick: bool) -> SiglipVisionModel:
    cfg = siglip_config(quick)
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = SiglipVisionModel(cfg).to(dtype)
    return model.eval()


def build_qwen2(device: torch.device, dtype: torch.dtype, quick: bool) -> Qwen2ForCausalLM:
    cfg = qwen2_config(quick)
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg).to(dtype)
    return model.eval()


def video_tokens(frames: int, header_tokens: int = 8, prefix_tokens: int = 20) -> int:
    """Length of the dense sequence for `frames` frames: prefix + per group (header + 144)."""
    groups = -(-frames // FRAMES_PER_GROUP)
    return prefix_tokens + groups * (header_tokens + TOKENS_PER_GROUP)


@torch.inference_mode()
def siglip_encode(model: SiglipVisionModel, pixels: torch.Tensor, batch: int) -> None:
    for i in range(0, pixels.shape[0], batch):
        model(pixel_values=pixels[i : i + batch])


@torch.inference_mode()
def qwen2_dense_prefill(model: Qwen2ForCausalLM, input_ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=input_ids, logits_to_keep=1, use_cache=True).logits


def siglip_flops(frames: int, quick: bool) -> float:
    c = siglip_config(quick)
    n, h, m, layers = (c.image_size // c.patch_size) ** 2, c.hidden_size, c.intermediate_size, c.num_hidden_layers
    per_layer = 2 * n * (4 * h * h + 2 * h * m) + 4 * n * n * h
    return frames * layers * per_layer


def qwen2_dense_flops(tokens: int, quick: bool) -> float:
    c = qwen2_config(quick)
    h, m, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    kv = h // c.num_attention_heads * c.num_key_value_heads
    linear = 2 * tokens * (2 * h * h + 2 * h * kv + 3 * h * m)
    attention = 2 * tokens * tokens * h  # causal: half of 4*T^2*h
    return layers * (linear + attention)
