"""Frame preprocessing for the SigLIP tower: uint8 RGB [F, H, W, 3] -> float [F, 3, S, S].

Owns: resize to S x S (bicubic with antialiasing, no crop) and scaling to [-1, 1]
(mean 0.5, std 0.5), as the released SigLipImageProcessor does. The released processor
resizes uint8 images with PIL; torch's antialiased bicubic, rounded back to 8-bit levels
as PIL's output is, matches it on most pixels but not bit for bit (tests/model measure it
on real footage).

Does not: sample frames in time (pipeline/ingest does) or convert BGR (callers pass RGB).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def preprocess_frames(
    frames: np.ndarray | torch.Tensor,
    image_size: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 [F, H, W, 3] RGB -> [F, 3, image_size, image_size] in [-1, 1]."""
    x = torch.as_tensor(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames shape={tuple(x.shape)}: expected [F, H, W, 3]")
    if x.dtype != torch.uint8:
        raise ValueError(f"frames dtype={x.dtype}: expected uint8")
    if x.shape[0] == 0:
        raise ValueError("frames: empty (F=0)")
    x = x.to(device).permute(0, 3, 1, 2).float()  # [F, 3, H, W] in 0..255
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True
        )
        x = x.round_().clamp_(0.0, 255.0)  # PIL resizes uint8 to uint8
    return ((x / 255.0 - 0.5) / 0.5).to(dtype)
