"""DTS as released, kept for tests: the reference model/dts.py is compared to.

model/dts.py computes the blocks in channels-last token layout with fused products (for
GPU speed). Here each block subclasses its model/dts.py twin (same modules, parameters and
state dict) and overrides only `forward` with the released formulation ([B, C, T, H, W]
convolutions, SDPA, einsums over [N, C, T]), so every change to the fast forward is
checked against it. `SiglipAE(cfg)` is the model's, with its blocks switched to these.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model import dts
from model.configs import DTSConfig


class SpatialAttnBlock(dts.SpatialAttnBlock):
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


class TemporalAttnBlock(dts.TemporalAttnBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)  # [(B H W), C, T]
        q, k, v = self.qkv(self.norm(seq)).chunk(3, dim=1)  # each [N, C, T]
        scale = 1.0 / math.sqrt(math.sqrt(c))
        q = q * scale
        logits = torch.einsum("nci,ncj->nij", q, k * scale)  # [N, T, T]
        k_rp = self.relative_position_k(t)  # [T, T, C]
        # Released quirk (model/dts.py docstring): bias(i, j) = q_j . k_rp[j, i].
        logits = logits + torch.einsum("ncj,jic->nij", q, k_rp)
        weight = logits.float().softmax(dim=-1).to(logits.dtype)
        out = torch.einsum("nij,ncj->nci", weight, v)
        out = out + torch.einsum("nij,ijc->nci", weight, self.relative_position_v(t))
        out = self.proj_out(out)  # [N, C, T]
        return x + out.view(b, h, w, c, t).permute(0, 3, 4, 1, 2)


class SamePadConv3d(dts.SamePadConv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x.float(), self.pad, mode="replicate").to(x.dtype)
        return self.conv(padded)


RELEASED = {dts.SpatialAttnBlock: SpatialAttnBlock, dts.TemporalAttnBlock: TemporalAttnBlock,
            dts.SamePadConv3d: SamePadConv3d}


class SiglipAE(dts.SiglipAE):
    def __init__(self, cfg: DTSConfig) -> None:
        super().__init__(cfg)
        for block in self.encoder:  # same modules and parameters, released forward
            block.__class__ = RELEASED[type(block)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # temporal_encoding [T, C] is added at x[:, c, t]: broadcast as [1, C, T, 1, 1].
        x = x + self.temporal_encoding.t()[None, :, :, None, None].to(x.dtype)
        return self.encoder(x)
