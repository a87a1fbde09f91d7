"""The one RMSNorm and the one rotary position embedding (RoPE) of the Qwen2 decoder.

Owns: `rms_norm` (mean of squares and rsqrt in fp32, cast back to the input's dtype, then
times the weight: Qwen2's order) and `RMSNorm`, its module with Hugging Face attribute
names (`weight`, `variance_epsilon`); RoPE with Qwen2's numerics (rotate-half convention,
angles in fp32, cos and sin cast to the tensor's dtype): `inv_frequencies`, `cos_sin`,
`apply_rope`, `rope_cos_sin` (tables straight from head_dim and theta) and `Rope`, which
keeps the inverse frequencies on a device. The reference decoder (model.qwen2), the
engine's runner, its fused, torch.compile'd blocks (model.engine.blocks) and its context
assembly (model.engine.context) all call these: plain tensor code without data-dependent
Python control flow, so that torch.compile traces and fuses it.

Does not: hold weights of its own beyond the norm's, nor choose positions (the callers do).
"""

from __future__ import annotations

import torch
from torch import nn


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x [..., hidden] normalised by its root mean square (in fp32), cast back, times weight."""
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


class RMSNorm(nn.Module):
    """Qwen2's RMSNorm as a module (`weight`, `variance_epsilon`, as Hugging Face names them)."""

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.variance_epsilon)


def inv_frequencies(head_dim: int, theta: float,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """[head_dim / 2] inverse frequencies theta^(-2i / head_dim), computed on `device`."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (theta ** exponent)


def cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [..., D] for integer positions [...] (angles in fp32, on
    inv_freq's device, cast to dtype)."""
    freqs = positions.to(inv_freq.device).float()[..., None] * inv_freq  # [..., D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [..., D]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [T, head_dim] for positions [T] (HF's default rotary), on
    `device` (default: the positions')."""
    device = positions.device if device is None else device
    return cos_sin(positions, inv_frequencies(head_dim, theta, device), dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., T, D] rotated by cos/sin broadcastable to it (rotate-half convention, as HF)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class Rope:
    """RoPE for one head size and theta, the inverse frequencies kept on a device (computed
    on the CPU, then moved there)."""

    def __init__(self, head_dim: int, theta: float, device: torch.device) -> None:
        self.inv_freq = inv_frequencies(head_dim, theta).to(device)  # [D/2]

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return cos_sin(positions, self.inv_freq, dtype)

    def rotate(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x [..., T, D] rotated at positions [T] (or broadcastable [..., T])."""
        cos, sin = self.cos_sin(positions, x.dtype)
        return apply_rope(x, cos, sin)
