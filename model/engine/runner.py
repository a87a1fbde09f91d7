"""Layer-wise forward of new tokens over an assembled, already rotated context.

Owns: `TextDims` (decoder sizes read from a VideoXL2 config's `.text` or a plain Qwen2
config), `KVBuffer` (a padded batch of rotated contexts with room for new tokens, written
in place so that decoding never re-copies the context) and `Runner`, which runs new token
embeddings through the Qwen2 decoder of a model with Hugging Face attribute names
(`.model.layers[i]`, `.self_attn.{q,k,v,o}_proj`, ...) with SDPA and an explicit boolean
mask. It returns the new tokens' pre-RoPE K/V (what the memory stores), optionally their
per-layer pre-RoPE queries (relevance) and logits.

Does not: choose contexts, slice chunks, or keep state between calls beyond the buffer
the caller passes.
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


@dataclass(eq=False)
class KVBuffer:
    """Rotated K/V of a batch of contexts plus room for new tokens; filled in place."""

    k: torch.Tensor  # [L, B, Hkv, capacity, D] rotated
    v: torch.Tensor  # [L, B, Hkv, capacity, D]
    valid: torch.Tensor  # [B, capacity] bool: which of the first `length` slots are real
    length: int  # slots in use (the longest context, then new tokens appended)

    @classmethod
    @torch.inference_mode()
    def from_contexts(cls, ks: list[torch.Tensor], vs: list[torch.Tensor], extra: int
                      ) -> KVBuffer:
        """Right-pad contexts [L, Hkv, Tc_i, D] to a common length, plus `extra` slots."""
        lens = [k.shape[2] for k in ks]
        tmax = max(lens)
        n_layers, h, _, d = ks[0].shape
        shape = (n_layers, len(ks), h, tmax + extra, d)
        k = ks[0].new_zeros(shape)
        v = vs[0].new_zeros(shape)
        valid = torch.zeros(len(ks), tmax + extra, dtype=torch.bool, device=k.device)
        for i, (ki, vi) in enumerate(zip(ks, vs, strict=True)):
            k[:, i, :, :lens[i]] = ki
            v[:, i, :, :lens[i]] = vi
            valid[i, :lens[i]] = True
        return cls(k=k, v=v, valid=valid, length=tmax)

    @classmethod
    def empty(cls, like: torch.Tensor, batch: int, capacity: int, dims: TextDims) -> KVBuffer:
        shape = (dims.n_layers, batch, dims.n_kv_heads, capacity, dims.head_dim)
        return cls(k=like.new_zeros(shape), v=like.new_zeros(shape),
                   valid=torch.zeros(batch, capacity, dtype=torch.bool, device=like.device),
                   length=0)


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
    def forward(self, emb: torch.Tensor, positions: torch.Tensor, buf: KVBuffer | None = None,
                logits_at: torch.Tensor | None = None, all_logits: bool = False,
                capture_queries: bool = False) -> RunOutput:
        """emb [B, T, hidden] at positions [B, T], attending to `buf` (whose first
        `length` slots hold the contexts) and causally to themselves. The new tokens'
        rotated K/V are written into `buf` at [length, length + T) and marked valid; right
        padding of new tokens is harmless since a padded key is never before a real query."""
        b, t, _ = emb.shape
        d = self.dims
        if buf is None:
            buf = KVBuffer.empty(emb, b, t, d)
        s, e = buf.length, buf.length + t
        cos, sin = self.rope.cos_sin(positions, emb.dtype)  # [B, T, D]
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, D]
        causal = torch.ones(t, t, dtype=torch.bool, device=emb.device).tril()
        mask = torch.cat([buf.valid[:, None, None, :s].expand(b, 1, t, s),
                          causal.expand(b, 1, t, t)], dim=-1)  # [B, 1, T, s + T]
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
            buf.k[i, :, :, s:e] = Rope.apply(k, cos, sin)
            buf.v[i, :, :, s:e] = v
            o = F.scaled_dot_product_attention(Rope.apply(q, cos, sin), buf.k[i, :, :, :e],
                                               buf.v[i, :, :, :e], attn_mask=mask,
                                               enable_gqa=d.n_heads != d.n_kv_heads)
            h = h + attn.o_proj(o.transpose(1, 2).reshape(b, t, d.n_heads * d.head_dim))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        buf.valid[:, s:e] = True
        buf.length = e
        logits = None
        if all_logits:
            logits = self.model.lm_head(self.model.model.norm(h))
        elif logits_at is not None:
            last = h[torch.arange(b, device=h.device), logits_at.to(h.device)]  # [B, hidden]
            logits = self.model.lm_head(self.model.model.norm(last))
        return RunOutput(k=torch.stack(ks), v=torch.stack(vs), logits=logits,
                         queries=torch.stack(qs) if capture_queries else None)
