"""Layer-wise forward of new tokens over an assembled, already rotated context.

Owns: `TextDims` (the decoder sizes read from either a VideoXL2 config's `.text` or a
plain Qwen2 config) and `Runner`, which runs a batch of new token embeddings through the
Qwen2 decoder of a model with Hugging Face attribute names (`.model.layers[i]`,
`.self_attn.{q,k,v,o}_proj`, ...), attending to a padded batch of contexts with SDPA and
an explicit boolean mask. It returns the new tokens' pre-RoPE K/V (what the memory
stores), optionally their per-layer pre-RoPE queries (relevance) and logits.

Does not: choose contexts, pad or slice chunks, or keep any state between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.engine.context import Rope


@dataclass(frozen=True)
class TextDims:
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden: int
    rope_theta: float


def text_dims(model: torch.nn.Module) -> TextDims:
    cfg = getattr(model.config, "text", model.config)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    theta = getattr(cfg, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it under rope_parameters
        theta = cfg.rope_parameters["rope_theta"]
    return TextDims(n_layers=cfg.num_hidden_layers, n_heads=cfg.num_attention_heads,
                    n_kv_heads=cfg.num_key_value_heads, head_dim=head_dim,
                    hidden=cfg.hidden_size, rope_theta=float(theta))


@dataclass(frozen=True, eq=False)
class RunOutput:
    k: torch.Tensor  # [L, B, Hkv, T, D] pre-RoPE keys of the new tokens
    v: torch.Tensor  # [L, B, Hkv, T, D]
    logits: torch.Tensor | None  # [B, T, V] (all) or [B, V] (at `logits_at`)
    queries: torch.Tensor | None  # [L, B, Hq, T, D] pre-RoPE, when asked for


class Runner:
    """Stateless forward over a model's Qwen2 decoder; one instance per model."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.dims = text_dims(model)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.rope = Rope(self.dims.head_dim, self.dims.rope_theta, self.device)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.model.embed_tokens(ids.to(self.device))

    @torch.inference_mode()
    def forward(self, emb: torch.Tensor, positions: torch.Tensor,
                ctx_k: torch.Tensor | None = None, ctx_v: torch.Tensor | None = None,
                ctx_valid: torch.Tensor | None = None, logits_at: torch.Tensor | None = None,
                all_logits: bool = False, capture_queries: bool = False) -> RunOutput:
        """emb [B, T, hidden]; positions [B, T]; ctx_k/ctx_v [L, B, Hkv, Tc, D] rotated;
        ctx_valid [B, Tc] bool. New tokens are causal among themselves; right padding of
        the new tokens is harmless since a padded key is never before a real query."""
        b, t, _ = emb.shape
        d = self.dims
        cos, sin = self.rope.cos_sin(positions, emb.dtype)  # [B, T, D]
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, D]
        causal = torch.ones(t, t, dtype=torch.bool, device=emb.device).tril()
        if ctx_k is not None:
            mask = torch.cat([ctx_valid[:, None, None, :].expand(b, 1, t, -1),
                              causal.expand(b, 1, t, t)], dim=-1)  # [B, 1, T, Tc + T]
        else:
            mask = causal.expand(b, 1, t, t)
        ks, vs, qs = [], [], []
        h = emb
        for i, layer in enumerate(self.model.model.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(b, t, d.n_heads, d.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(b, t, d.n_kv_heads, d.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(b, t, d.n_kv_heads, d.head_dim).transpose(1, 2)
            ks.append(k)
            vs.append(v)
            if capture_queries:
                qs.append(q)
            q_r, k_r = Rope.apply(q, cos, sin), Rope.apply(k, cos, sin)
            if ctx_k is not None:
                k_r = torch.cat([ctx_k[i], k_r], dim=2)
                v = torch.cat([ctx_v[i], v], dim=2)
            o = F.scaled_dot_product_attention(q_r, k_r, v, attn_mask=mask, enable_gqa=True)
            h = h + attn.o_proj(o.transpose(1, 2).reshape(b, t, d.n_heads * d.head_dim))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        logits = None
        if all_logits:
            logits = self.model.lm_head(self.model.model.norm(h))
        elif logits_at is not None:
            last = h[torch.arange(b, device=h.device), logits_at.to(h.device)]  # [B, hidden]
            logits = self.model.lm_head(self.model.model.norm(last))
        return RunOutput(k=torch.stack(ks), v=torch.stack(vs), logits=logits,
                         queries=torch.stack(qs) if capture_queries else None)


def pad_contexts(ks: list[torch.Tensor], vs: list[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad per-item contexts [L, Hkv, Tc_i, D] to [L, B, Hkv, Tc_max, D] + valid [B, Tc]."""
    tmax = max(k.shape[2] for k in ks)
    lens = torch.tensor([k.shape[2] for k in ks], device=ks[0].device)
    valid = torch.arange(tmax, device=ks[0].device)[None, :] < lens[:, None]
    if all(k.shape[2] == tmax for k in ks):
        return torch.stack(ks, dim=1), torch.stack(vs, dim=1), valid
    pad = [(0, 0, 0, tmax - k.shape[2]) for k in ks]
    k = torch.stack([F.pad(x, p) for x, p in zip(ks, pad, strict=True)], dim=1)
    v = torch.stack([F.pad(x, p) for x, p in zip(vs, pad, strict=True)], dim=1)
    return k, v, valid
