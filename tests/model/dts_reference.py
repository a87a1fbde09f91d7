"""DTS as released, kept verbatim for tests: the reference model/dts.py is compared to.

model/dts.py computes the same blocks in channels-last token layout with fused products
(for GPU speed); this file keeps the straightforward formulation in the released layout
([B, C, T, H, W] convolutions, SDPA, einsums over [N, C, T]) so that every change to the
fast one is checked against it. Same module and parameter names: state dicts load both ways.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.configs import DTSConfig  # noqa: I001


def groups_from_frames(features: torch.Tensor, group_frames: int = 4) -> torch.Tensor:
    """[F, C, h, w] frame features (F a multiple of group_frames) -> [G, C, 4, h, w] by
    the released plain view (not a permute)."""
    f, c, h, w = features.shape
    if f % group_frames:
        raise ValueError(f"frames={f} is not a multiple of group_frames={group_frames}")
    return features.contiguous().view(f // group_frames, c, group_frames, h, w)


class SpatialAttnBlock(nn.Module):
    """One-head self-attention over the h*w positions of each time slot (1x1x1 convs)."""

    def __init__(self, channels: int, num_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, channels, eps=1e-6)
        self.q = nn.Conv3d(channels, channels, kernel_size=1)
        self.k = nn.Conv3d(channels, channels, kernel_size=1)
        self.v = nn.Conv3d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv3d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        n = self.norm(x)

        def tokens(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 2, 3, 4, 1).reshape(b * t, 1, h * w, c)  # [(B T), 1, HW, C]

        out = F.scaled_dot_product_attention(
            tokens(self.q(n)), tokens(self.k(n)), tokens(self.v(n))
        )
        out = out.view(b, t, h, w, c).permute(0, 4, 1, 2, 3)  # [B, C, T, H, W]
        return x + self.proj_out(out)


class RelativePosition(nn.Module):
    def __init__(self, num_units: int, max_relative_position: int) -> None:
        super().__init__()
        self.max_relative_position = max_relative_position
        self.embeddings_table = nn.Parameter(torch.empty(2 * max_relative_position + 1, num_units))
        nn.init.xavier_uniform_(self.embeddings_table)

    def forward(self, length: int) -> torch.Tensor:
        """[T, T, units]: entry (q, k) is table[clip(k - q) + max]."""
        r = torch.arange(length, device=self.embeddings_table.device)
        m = self.max_relative_position
        return self.embeddings_table[(r[None, :] - r[:, None]).clamp(-m, m) + m]


class TemporalAttnBlock(nn.Module):
    """One-head attention along time at each (h, w), with relative-position tables."""

    def __init__(self, channels: int, num_groups: int, max_relative_position: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, channels, eps=1e-6)
        self.qkv = nn.Conv1d(channels, 3 * channels, kernel_size=1)
        self.relative_position_k = RelativePosition(channels, max_relative_position)
        self.relative_position_v = RelativePosition(channels, max_relative_position)
        self.proj_out = nn.Conv1d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)  # [(B H W), C, T]
        q, k, v = self.qkv(self.norm(seq)).chunk(3, dim=1)  # each [N, C, T]
        scale = 1.0 / math.sqrt(math.sqrt(c))
        q = q * scale
        logits = torch.einsum("nci,ncj->nij", q, k * scale)  # [N, T, T]
        k_rp = self.relative_position_k(t)  # [T, T, C]
        # Released quirk (see module docstring): bias(i, j) = q_j . k_rp[j, i].
        logits = logits + torch.einsum("ncj,jic->nij", q, k_rp)
        weight = logits.float().softmax(dim=-1).to(logits.dtype)
        out = torch.einsum("nij,ncj->nci", weight, v)
        out = out + torch.einsum("nij,ijc->nci", weight, self.relative_position_v(t))
        out = self.proj_out(out)  # [N, C, T]
        return x + out.view(b, h, w, c, t).permute(0, 3, 4, 1, 2)


class SamePadConv3d(nn.Module):
    """3x3x3 conv, stride (2, 1, 1), replicate padding (time 1 before / 0 after, space 1/1)."""

    def __init__(self, channels: int, temporal_stride: int, kernel: int = 3) -> None:
        super().__init__()
        stride = (temporal_stride, 1, 1)
        pads = [kernel - s for s in stride]  # total padding per (t, h, w)
        # F.pad takes the last dim first; the odd extra goes before, as released.
        self.pad = tuple(x for p in reversed(pads) for x in (p // 2 + p % 2, p // 2))
        self.conv = nn.Conv3d(channels, channels, kernel_size=kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x.float(), self.pad, mode="replicate").to(x.dtype)
        return self.conv(padded)


class SiglipAE(nn.Module):
    """[G, C, 4, h, w] -> [G, C, 1, h, w]."""

    def __init__(self, cfg: DTSConfig) -> None:
        super().__init__()
        c, g = cfg.channels, cfg.num_groups
        self.temporal_encoding = nn.Parameter(torch.empty(cfg.group_frames, c))
        nn.init.normal_(self.temporal_encoding)
        self.encoder = nn.Sequential(
            SpatialAttnBlock(c, g),
            TemporalAttnBlock(c, g, cfg.max_relative_position),
            SamePadConv3d(c, cfg.temporal_stride),
            SpatialAttnBlock(c, g),
            TemporalAttnBlock(c, g, cfg.max_relative_position),
            SamePadConv3d(c, cfg.temporal_stride),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # temporal_encoding [T, C] is added at x[:, c, t]: broadcast as [1, C, T, 1, 1].
        x = x + self.temporal_encoding.t()[None, :, :, None, None].to(x.dtype)
        return self.encoder(x)
