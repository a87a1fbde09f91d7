"""DTS (dynamic token synthesis, checkpoint keys `model.sae.*`): 4 frames -> 1 feature map.

Owns: `SiglipAE`, whose input is one [C, 4, h, w] block per group of 4 frames, built by
`groups_from_frames` with a plain `view` of contiguous [F, C, h, w] frame features. That
view is NOT a permute: time slot t of DTS channel c holds frame 4g + (4c + t) // C, channel
(4c + t) % C. The released weights were trained with that layout, so it is reproduced
exactly. The blocks follow the released order: spatial attention, temporal attention,
stride-2 conv (time), again both attentions, a second stride-2 conv. They compute in
channels-last memory ([B, T, H, W, C] under the [B, C, T, H, W] view): the 1x1 convolutions
are matrix products over channels, the one-head attentions batched products around an fp32
softmax, GroupNorm statistics fp32. The module and parameter names (checkpoint keys) are
the released ones; tests/model/dts_reference.py keeps the released formulation verbatim
and the tests compare the two.

The temporal block's relative-position term on the logits is reproduced as released:
the bias added to logit (i, j) is q_j . table[clip(i - j)], a transposed einsum in the
original that the weights were trained with.

Does not: run SigLIP or the projector.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.configs import DTSConfig


def groups_from_frames(features: torch.Tensor, group_frames: int = 4) -> torch.Tensor:
    """[F, C, h, w] frame features (F a multiple of group_frames) -> [G, C, 4, h, w] by
    the released plain view (not a permute)."""
    f, c, h, w = features.shape
    if f % group_frames:
        raise ValueError(f"frames={f} is not a multiple of group_frames={group_frames}")
    return features.contiguous().view(f // group_frames, c, group_frames, h, w)


def group_norm_tokens(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """nn.GroupNorm of tokens x [N, L, C] (channels last): statistics per sample and
    channel group over all L positions, in fp32, as GroupNorm over [N, C, L] computes."""
    n, length, c = x.shape
    g = norm.num_groups
    xf = x.float().view(n, length, g, c // g)
    var, mean = torch.var_mean(xf, dim=(1, 3), keepdim=True, correction=0)
    y = ((xf - mean) * torch.rsqrt(var + norm.eps)).view(n, length, c)
    return (y * norm.weight.float() + norm.bias.float()).to(x.dtype)


def _pointwise(convs: list[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    """1x1(x1) convolutions over channels as one linear weight [sum out, C] and bias."""
    ws = [c.weight.reshape(c.weight.shape[0], -1) for c in convs]
    if len(convs) == 1:  # a view: nothing to concatenate (or copy)
        return ws[0], convs[0].bias
    return torch.cat(ws), torch.cat([c.bias for c in convs])


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, T, H, W, C] (free when x is channels_last_3d)."""
    return x.permute(0, 2, 3, 4, 1)


def _from_tokens(y: torch.Tensor) -> torch.Tensor:
    """[B, T, H, W, C] -> the [B, C, T, H, W] view of it (channels_last_3d memory)."""
    return y.permute(0, 4, 1, 2, 3)


class SpatialAttnBlock(nn.Module):
    """One-head self-attention over the h*w positions of each time slot (1x1x1 convs),
    computed in channels-last token layout: the q/k/v convolutions as one matrix product
    and the attention (head dim = C, which no flash kernel takes) as two batched products
    around an fp32 softmax."""

    def __init__(self, channels: int, num_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, channels, eps=1e-6)
        self.q = nn.Conv3d(channels, channels, kernel_size=1)
        self.k = nn.Conv3d(channels, channels, kernel_size=1)
        self.v = nn.Conv3d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv3d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        tok = _to_tokens(x).reshape(b, t * h * w, c)
        n = group_norm_tokens(tok, self.norm).reshape(b * t, h * w, c)
        qkv = F.linear(n, *_pointwise([self.q, self.k, self.v]))  # [(B T), HW, 3C]
        q, k, v = qkv.split(c, dim=-1)
        scores = torch.matmul(q, k.transpose(1, 2)).float() * (1.0 / math.sqrt(c))
        out = torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)  # [(B T), HW, C]
        out = F.linear(out, *_pointwise([self.proj_out]))
        return x + _from_tokens(out.view(b, t, h, w, c))


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
    """One-head attention along time at each (h, w), with relative-position tables;
    computed in channels-last token layout [(B H W), T, C]."""

    def __init__(self, channels: int, num_groups: int, max_relative_position: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, channels, eps=1e-6)
        self.qkv = nn.Conv1d(channels, 3 * channels, kernel_size=1)
        self.relative_position_k = RelativePosition(channels, max_relative_position)
        self.relative_position_v = RelativePosition(channels, max_relative_position)
        self.proj_out = nn.Conv1d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)  # [N, T, C]
        qkv = F.linear(group_norm_tokens(seq, self.norm), *_pointwise([self.qkv]))
        q, k, v = qkv.split(c, dim=-1)  # each [N, T, C]
        scale = 1.0 / math.sqrt(math.sqrt(c))
        q = q * scale
        logits = torch.matmul(q, (k * scale).transpose(1, 2))  # [N, T(i), T(j)]
        k_rp = self.relative_position_k(t).to(q.dtype)  # [T, T, C]
        # Released quirk (see module docstring): bias(i, j) = q_j . k_rp[j, i].
        logits = logits + torch.einsum("njc,jic->nij", q, k_rp)
        weight = logits.float().softmax(dim=-1).to(logits.dtype)
        out = torch.matmul(weight, v)  # [N, T, C]
        out = out + torch.einsum("nij,ijc->nic", weight, self.relative_position_v(t).to(q.dtype))
        out = F.linear(out, *_pointwise([self.proj_out]))  # [N, T, C]
        return x + out.view(b, h, w, t, c).permute(0, 4, 3, 1, 2)


class SamePadConv3d(nn.Module):
    """3x3x3 conv, stride (2, 1, 1), replicate padding (time 1 before / 0 after, space 1/1),
    in channels_last_3d memory (the NDHWC implicit-GEMM kernels on GPUs)."""

    def __init__(self, channels: int, temporal_stride: int, kernel: int = 3) -> None:
        super().__init__()
        stride = (temporal_stride, 1, 1)
        pads = [kernel - s for s in stride]  # total padding per (t, h, w)
        # F.pad takes the last dim first; the odd extra goes before, as released.
        self.pad = tuple(x for p in reversed(pads) for x in (p // 2 + p % 2, p // 2))
        self.conv = nn.Conv3d(channels, channels, kernel_size=kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cl = torch.channels_last_3d
        if x.is_cuda:  # replicate padding runs in bf16 on CUDA
            padded = F.pad(x, self.pad, mode="replicate")
        else:
            padded = F.pad(x.float(), self.pad, mode="replicate").to(x.dtype)
        w = self.conv.weight.contiguous(memory_format=cl)
        return F.conv3d(padded.contiguous(memory_format=cl), w, self.conv.bias,
                        self.conv.stride)


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
        # channels-last memory from here on: every block reads tokens [.., C] for free
        return self.encoder(x.contiguous(memory_format=torch.channels_last_3d))
