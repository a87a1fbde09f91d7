"""The dense parts of one Qwen2 decoder layer as plain functions of tensors, so that
torch.compile can fuse them (RMSNorm, rotary embedding, SiLU-gating and residual adds
become a few kernels instead of dozens of launches per layer).

Owns: `pre_attention` (input norm, q/k/v projections, rotary embedding of q and k) and
`post_attention` (o projection, residual, post norm, gated MLP, residual), with the same
numerics as model.qwen2 (norm in fp32, cast, then weight), and `compiled()`, which
returns them through torch.compile (dynamic token counts; one compiled graph serves all
28 layers because weights are arguments, not captured modules).

Why: a 608-token chunk over 28 layers issues about 1,300 small kernel launches in eager
mode; on an H100 the launches, not the matrix products, bound the per-chunk time. Opt-in
(`Runner.use_blocks`); the default path stays the module-by-module one.

Does not: attend (the runner's `_attend` does, between the two blocks), nor handle
FP8Linear layers (blocks need plain nn.Linear weights; the runner falls back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def pre_attention(h, ln_w, eps: float, wq, bq, wk, bk, wv, bv, cos, sin, n_heads: int,
                  n_kv: int, head_dim: int):
    """h [B, T, hidden] -> q, k, v (pre-RoPE) and rotated q, k, each [B, heads, T, D]."""
    b, t, _ = h.shape
    x = rms_norm(h, ln_w, eps)
    q = F.linear(x, wq, bq).view(b, t, n_heads, head_dim).transpose(1, 2)
    k = F.linear(x, wk, bk).view(b, t, n_kv, head_dim).transpose(1, 2)
    v = F.linear(x, wv, bv).view(b, t, n_kv, head_dim).transpose(1, 2)
    return q, k, v, rope(q, cos, sin), rope(k, cos, sin)


def post_attention(h, o, wo, ln_w, eps: float, wg, wu, wd):
    """Residual over the attention output o [B, T, H * D], then the gated MLP."""
    h = h + F.linear(o, wo)
    x = rms_norm(h, ln_w, eps)
    return h + F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)


_COMPILED: dict[str, object] = {}


def compiled() -> tuple[object, object]:
    """torch.compile'd (pre_attention, post_attention), built once per process."""
    if not _COMPILED:
        _COMPILED["pre"] = torch.compile(pre_attention, dynamic=True)
        _COMPILED["post"] = torch.compile(post_attention, dynamic=True)
    return _COMPILED["pre"], _COMPILED["post"]


def layer_weights(layer: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The tensors the blocks take, or None when a projection is not a plain nn.Linear."""
    a, m = layer.self_attn, layer.mlp
    mods = (a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj)
    if not all(type(x) is torch.nn.Linear for x in mods):
        return None
    return {"ln1": layer.input_layernorm.weight, "eps1": layer.input_layernorm.variance_epsilon,
            "wq": a.q_proj.weight, "bq": a.q_proj.bias, "wk": a.k_proj.weight,
            "bk": a.k_proj.bias, "wv": a.v_proj.weight, "bv": a.v_proj.bias,
            "wo": a.o_proj.weight, "ln2": layer.post_attention_layernorm.weight,
            "eps2": layer.post_attention_layernorm.variance_epsilon,
            "wg": m.gate_proj.weight, "wu": m.up_proj.weight, "wd": m.down_proj.weight}
