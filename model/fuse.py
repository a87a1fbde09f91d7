"""Fused projection weights: several nn.Linear (or FP8Linear) of the same input as one
matrix product, the habit of serving engines (vLLM's QKV and gate/up merged layers).

Owns: `fuse_linears(mods)`, which concatenates the weights (and biases) of linear layers
that read the same input along the output dimension, then re-points each module's own
weight at its rows of the fused tensor, so that no memory is doubled, the checkpoint keys
and `state_dict` are unchanged and the module-by-module path still computes the same
values. A second call on the same modules returns the cached fused weight.

A fused weight is a `Weight`: a plain tensor [out, in] (bf16/fp32), or for FP8 layers a
tuple (e4m3 [out, in], fp32 scale [1, out]) whose per-output-channel scales concatenate
exactly. `linear(x, w, b)` applies either (FP8 through model.fp8.fp8_linear).

Does not: change any value (a fused product equals the separate ones row for row), nor
fuse layers of different kinds (a mix of FP8 and plain layers is declined: None).
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from model.fp8 import FP8Linear, fp8_linear

Weight = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor, bool]]  # noqa: UP007


def linear(x: torch.Tensor, w: Weight, b: torch.Tensor | None = None) -> torch.Tensor:
    """x @ w.T + b for a plain weight or an FP8 (e4m3, scale, native) triple. Under
    torch.compile the bias is added after the product, where inductor fuses it into the
    next elementwise kernel: its addmm lowering otherwise hands cuBLAS the bias broadcast
    to the whole output (SigLIP's q/k/v product over 93,312 rows: 1.51 ms against 1.00 ms
    with the bias in cuBLASLt's epilogue, H100, docs/BENCHMARKS.md GPU run 3)."""
    if isinstance(w, tuple):
        return fp8_linear(x, w[0], w[1], b, x.dtype, native=w[2])
    if b is not None and torch.compiler.is_compiling():
        return F.linear(x, w) + b
    return F.linear(x, w, b)


def dense(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mod(x) for a linear layer, through `linear` when it is a plain nn.Linear."""
    if type(mod) is nn.Linear:
        return linear(x, mod.weight, mod.bias)
    return mod(x)


def _cached(mods: list[nn.Module]) -> tuple[Weight, torch.Tensor | None] | None:
    cache = getattr(mods[0], "_fused_with", None)
    if cache is None or cache[0] != tuple(id(m) for m in mods):
        return None
    first = mods[0].weight_fp8 if isinstance(mods[0], FP8Linear) else mods[0].weight
    fused = cache[1][0] if isinstance(cache[1], tuple) else cache[1]
    return (cache[1], cache[2]) if first.data_ptr() == fused.data_ptr() else None


@torch.no_grad()
def fuse_linears(mods: list[nn.Module]) -> tuple[Weight, torch.Tensor | None] | None:
    """(fused weight, fused bias or None) of linear layers reading the same input, or None
    when they are not all plain nn.Linear or all FP8Linear, or only some have a bias."""
    kinds = {type(m) for m in mods}
    if kinds not in ({nn.Linear}, {FP8Linear}) or len({m.bias is None for m in mods}) > 1:
        return None
    if len(mods) == 1:  # nothing to fuse: the layer's own tensors
        m = mods[0]
        return ((m.weight_fp8, m.weight_scale, m.native) if kinds == {FP8Linear}
                else m.weight), m.bias
    hit = _cached(mods)
    if hit is not None:
        return hit
    bias = None if mods[0].bias is None else torch.cat([m.bias for m in mods])
    rows = [0]
    for m in mods:
        rows.append(rows[-1] + m.out_features)
    if kinds == {nn.Linear}:
        weight: Weight = torch.cat([m.weight for m in mods])
        for m, a, z in zip(mods, rows, rows[1:], strict=False):
            m.weight = nn.Parameter(weight[a:z], requires_grad=False)
    else:
        w8 = torch.cat([m.weight_fp8 for m in mods])
        scale = torch.cat([m.weight_scale for m in mods], dim=1)
        for m, a, z in zip(mods, rows, rows[1:], strict=False):
            m.weight_fp8, m.weight_scale = w8[a:z], scale[:, a:z]
        weight = (w8, scale, all(m.native for m in mods))
    if bias is not None:
        for m, a, z in zip(mods, rows, rows[1:], strict=False):
            m.bias = nn.Parameter(bias[a:z], requires_grad=False)
    mods[0]._fused_with = (tuple(id(m) for m in mods), weight, bias)
    return weight, bias


