"""The `mlp2x_gelu` projector (keys `model.mm_projector.0`, `.2`) and the 2x2 pooling.

Owns: DTS output [G, 576, C_vision] -> [G, 576, hidden] -> 2x2 average pool over the
24x24 map -> [G, 144, hidden], tokens in row-major (y, x) order of the pooled 12x12 map.

Does not: place tokens into the prompt (model.prompt / model.videoxl2 do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def build_projector(vision_hidden: int, hidden: int) -> nn.Sequential:
    """Linear, GELU, Linear: indices 0 and 2 match the checkpoint keys."""
    return nn.Sequential(nn.Linear(vision_hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))


def pool_grid(tokens: torch.Tensor, grid: int, stride: int) -> torch.Tensor:
    """[G, grid*grid, D] row-major tokens -> [G, (grid/stride)^2, D] by average pooling."""
    g, n, d = tokens.shape
    if n != grid * grid:
        raise ValueError(f"tokens per group={n} != grid {grid}x{grid}")
    x = tokens.view(g, grid, grid, d).permute(0, 3, 1, 2)  # [G, D, grid, grid]
    x = F.avg_pool2d(x, stride)  # [G, D, grid/s, grid/s]
    return x.permute(0, 2, 3, 1).reshape(g, -1, d)  # [G, (grid/s)^2, D], row-major
