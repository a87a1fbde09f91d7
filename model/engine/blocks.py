"""The dense parts of one Qwen2 decoder layer as plain functions of tensors, so that
torch.compile can fuse them (RMSNorm, rotary embedding, SiLU-gating, residual adds and,
with FP8 layers, the activation quantisation become a few kernels per layer).

Owns: `pre_attention` (input norm, one fused q/k/v product, rotary embedding of q and k)
and `post_attention` (o projection, residual, post norm, one fused gate/up product, SiLU
gating, down projection, residual), through the RMSNorm and RoPE that model.qwen2 uses
(model.layers: norm in fp32, cast, then weight); `layer_weights`, which fuses a layer's
q/k/v and gate/up weights (model.fuse: the modules keep their keys and share the fused
memory), for plain or FP8 layers alike; and `compiled()`, which returns the two
functions through torch.compile (one graph serves all 28 layers because weights are
arguments, not captured modules).

Why: a 608-token chunk over 28 layers issues about 1,300 small kernel launches in eager
mode, and q/k/v as three products (two of them 512 columns wide) run far below the GEMM
rate; fused, each layer is four matrix products, attention and a few fused kernels.

Does not: attend (the runner's `_attend` does, between the two blocks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.fuse import fuse_linears, linear
from model.layers import apply_rope, rms_norm


def pre_attention(h, w: dict, cos, sin, n_heads: int, n_kv: int, head_dim: int):
    """h [B, T, hidden] -> q, k, v (pre-RoPE) and rotated q, k, each [B, heads, T, D]."""
    b, t, _ = h.shape
    x = rms_norm(h, w["ln1"], w["eps1"])
    qkv = linear(x, w["wqkv"], w["bqkv"])
    nq, nk = n_heads * head_dim, n_kv * head_dim
    q = qkv[..., :nq].reshape(b, t, n_heads, head_dim).transpose(1, 2)
    k = qkv[..., nq:nq + nk].reshape(b, t, n_kv, head_dim).transpose(1, 2)
    v = qkv[..., nq + nk:].reshape(b, t, n_kv, head_dim).transpose(1, 2)
    return q, k, v, apply_rope(q, cos, sin), apply_rope(k, cos, sin)


def post_attention(h, o, w: dict):
    """Residual over the attention output o [B, T, H * D], then the gated MLP."""
    h = h + linear(o, w["wo"])
    x = rms_norm(h, w["ln2"], w["eps2"])
    gate, up = linear(x, w["wgu"]).chunk(2, dim=-1)
    return h + linear(F.silu(gate) * up, w["wd"])


def greedy_head(h, norm_w, eps: float, lm_w):
    """The greedy next token of the last position of h [B, T, hidden]: final norm, LM head,
    argmax."""
    return linear(rms_norm(h[:, -1], norm_w, eps), lm_w).argmax(dim=-1)


_COMPILED: dict[str, object] = {}
# One-token steps: inductor writes each matrix-vector product as a fused reduction kernel
# whose tile sizes coordinate descent tunes (what reaches the memory bandwidth at M = 1;
# cuBLAS's GEMV does not), and fuses the norms, rotary and gating around it.
DECODE_OPTIONS = {"coordinate_descent_tuning": True}


def compiled() -> tuple[object, object]:
    """torch.compile'd (pre_attention, post_attention), built once per process."""
    if not _COMPILED:
        _COMPILED["pre"] = torch.compile(pre_attention, dynamic=True)
        _COMPILED["post"] = torch.compile(post_attention, dynamic=True)
    return _COMPILED["pre"], _COMPILED["post"]


def compiled_decode() -> tuple[object, object, object]:
    """(pre_attention, post_attention, greedy_head) compiled for one-token steps."""
    if "dpre" not in _COMPILED:
        for name, fn in (("dpre", pre_attention), ("dpost", post_attention),
                         ("dhead", greedy_head)):
            _COMPILED[name] = torch.compile(fn, dynamic=False, options=DECODE_OPTIONS)
    return _COMPILED["dpre"], _COMPILED["dpost"], _COMPILED["dhead"]


def layer_weights(layer: torch.nn.Module) -> dict | None:
    """The tensors the blocks take (q/k/v and gate/up fused), or None when the layer's
    projections are neither all plain nn.Linear nor all FP8Linear."""
    a, m = layer.self_attn, layer.mlp
    qkv = fuse_linears([a.q_proj, a.k_proj, a.v_proj])
    gu = fuse_linears([m.gate_proj, m.up_proj])
    o, d = fuse_linears([a.o_proj]), fuse_linears([m.down_proj])
    if qkv is None or gu is None or o is None or d is None or o[1] is not None:
        return None
    return {"ln1": layer.input_layernorm.weight, "eps1": layer.input_layernorm.variance_epsilon,
            "wqkv": qkv[0], "bqkv": qkv[1], "wo": o[0],
            "ln2": layer.post_attention_layernorm.weight,
            "eps2": layer.post_attention_layernorm.variance_epsilon,
            "wgu": gu[0], "wd": d[0]}
