"""Attention of a chunk's new tokens over a long dense context, split along the keys.

Owns: `split_kv_attention(q, k, v, context)`: the context keys cut into P equal pieces
that run as one batched, unmasked flash-attention call, the remainder of the context plus
the new tokens as one lower-right causal call, and the partial results merged by their
log-sum-exp (exact: softmax over the union of the pieces). `attention_lse` is one such
call returning (output, logsumexp); on CUDA the flash kernel with native GQA, elsewhere
the same thing in plain tensor code (how the CPU tests check the merge).

Why: one camera's 640-token chunk has only 28 heads x 5 query tiles of work per kernel
(140 thread blocks on 132 SMs), each walking ~5,000 keys: a second, nearly empty wave and
little latency hiding; measured at ~113 TFLOP/s on an H100. Split four ways along the
keys the same work is ~700 blocks of ~1,100 keys.

Does not: handle padded (masked) contexts; the runner's masked path does.
"""

from __future__ import annotations

import math

import torch

MIN_PIECE = 1024  # keys per piece at least; fewer context keys: one plain call
MAX_PIECES = 4


def attention_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, H, T, D] over k, v [B, Hkv, S, D] (H a multiple of Hkv; causal aligned to the
    lower right, S >= T) -> output [B, H, T, D] and logsumexp [B, H, T] (fp32)."""
    if q.is_cuda:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention(
            q, k, v, 0.0, causal, False)[:2]
        return out, lse[..., :q.shape[2]]
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    scores = torch.matmul(q, k.transpose(2, 3)).float() / math.sqrt(q.shape[-1])
    if causal:
        t, s = q.shape[2], k.shape[2]
        allowed = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.exp(scores - lse[..., None]).to(v.dtype), v)
    return out, lse


def merge(outs: torch.Tensor, lses: torch.Tensor) -> torch.Tensor:
    """outs [B, P, H, T, D], lses [B, P, H, T] of attention over disjoint key sets ->
    the attention over their union [B, H, T, D]."""
    w = torch.softmax(lses, dim=1)  # exp(lse_i - logsumexp_j lse_j)
    return (outs.float() * w[..., None]).sum(dim=1).to(outs.dtype)


_MERGE: dict[str, object] = {}


def _merge_fn(device: torch.device):
    if device.type != "cuda":
        return merge
    if "fn" not in _MERGE:  # one fused kernel instead of five passes over fp32 copies
        _MERGE["fn"] = torch.compile(merge, dynamic=True)
    return _MERGE["fn"]


def pieces_for(context: int) -> int:
    return min(MAX_PIECES, context // MIN_PIECE)


def split_kv_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, context: int
                       ) -> torch.Tensor:
    """q [B, H, T, D] over k, v [B, Hkv, context + T, D]: every context key, and the new
    tokens causally; the context split into pieces_for(context) batched pieces."""
    b, h, t, d = q.shape
    hkv = k.shape[1]
    p = pieces_for(context)
    if p < 2:
        return attention_lse(q, k, v, causal=True)[0]
    n = context // p
    pieces = [(kv[:, :, :p * n].reshape(b, hkv, p, n, d).transpose(1, 2)
               .reshape(b * p, hkv, n, d)) for kv in (k, v)]
    qa = q[:, None].expand(b, p, h, t, d).reshape(b * p, h, t, d)
    out_a, lse_a = attention_lse(qa, pieces[0], pieces[1], causal=False)
    out_b, lse_b = attention_lse(q, k[:, :, p * n:], v[:, :, p * n:], causal=True)
    outs = torch.cat([out_a.view(b, p, h, t, d), out_b[:, None]], dim=1)
    lses = torch.cat([lse_a.reshape(b, p, h, t), lse_b[:, None]], dim=1)
    return _merge_fn(q.device)(outs, lses)
