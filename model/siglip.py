"""SigLIP vision tower as Video-XL-2 uses it: last layer dropped, no head, features taken
before the post-layernorm.

Owns: the forward pass pixels [F, 3, 384, 384] -> patch features [F, 729, hidden], with
attribute names equal to the checkpoint keys under `model.vision_tower.vision_tower.`
(`vision_model.embeddings`, `vision_model.encoder.layers.N`, `vision_model.post_layernorm`).
`post_layernorm` is kept as parameters only so its checkpoint keys load; it is not applied
(the released code reads `hidden_states[-1]`, which precedes it).

Does not: resize features to 24x24 or pad frame counts (model.videoxl2 does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.configs import VisionConfig
from model.fuse import dense, fuse_linears, linear


class SiglipVisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            cfg.num_channels, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )
        self.position_embedding = nn.Embedding(cfg.patches_per_side**2, cfg.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype))  # [F, C, 27, 27]
        x = x.flatten(2).transpose(1, 2)  # [F, 729, C]
        return x + self.position_embedding.weight[None]


class SiglipAttention(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        # (Weight, bias, the three modules it was fused from) from fuse(); used only while
        # those are still the layer's modules (apply_fp8 swaps them: separate again)
        self.fused_qkv: tuple | None = None

    def fuse(self) -> bool:
        """Compute q, k and v as one matrix product from now on (model.fuse: same values,
        the modules keep their keys). False when the three are of different kinds."""
        mods = (self.q_proj, self.k_proj, self.v_proj)
        fused = fuse_linears(list(mods))
        self.fused_qkv = None if fused is None else (*fused, mods)
        return fused is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # [B,H,T,D]

        fused = self.fused_qkv
        if fused is not None and fused[2] == (self.q_proj, self.k_proj, self.v_proj):
            q, k, v = linear(x, fused[0], fused[1]).chunk(3, dim=-1)
        else:
            q, k, v = (dense(m, x) for m in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        return dense(self.out_proj, out.transpose(1, 2).reshape(b, t, c))


class SiglipMLP(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense(self.fc2, F.gelu(dense(self.fc1, x), approximate="tanh"))


class SiglipEncoderLayer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = SiglipAttention(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = SiglipMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(SiglipEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))


class SiglipVisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.embeddings = SiglipVisionEmbeddings(cfg)
        self.encoder = SiglipEncoder(cfg)
        # Loaded for key compatibility only; Video-XL-2 features precede it.
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        h = self.embeddings(pixels)
        for layer in self.encoder.layers:
            h = layer(h)
        return h


class SiglipVisionModel(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.vision_model = SiglipVisionTransformer(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixels)


class SigLipVisionTower(nn.Module):
    """Wrapper whose `.vision_tower` attribute reproduces the released key prefix."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vision_tower = SiglipVisionModel(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [F, 3, S, S] scaled to [-1, 1] -> features [F, (S/patch)^2, hidden]."""
        return self.vision_tower(pixels)
