"""Qwen2 decoder (GQA, RoPE, RMSNorm, untied head) with Hugging Face attribute names.

Owns: one dense causal forward pass over token embeddings, and the pieces the engine calls
one by one (norms, projections, MLP), because the engine keeps keys BEFORE rotary
embedding in its chunk memory and rotates assembled contexts itself. Attention is PyTorch
scaled_dot_product_attention.

Does not: define RMSNorm or RoPE (model.layers, shared with the engine), keep a KV cache,
do chunked prefill or decoding (model.engine does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.configs import TextConfig
from model.layers import RMSNorm, apply_rope, rope_cos_sin


class Qwen2Attention(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        q_out = cfg.num_attention_heads * cfg.head_dim
        kv_out = cfg.num_key_value_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, q_out, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, kv_out, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, kv_out, bias=True)
        self.o_proj = nn.Linear(q_out, cfg.hidden_size, bias=False)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Projections of x [B, T, hidden] as q [B, H, T, D], k and v [B, Hkv, T, D]
        (k before rotary embedding)."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        return q, k, v

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Dense causal self-attention over x [B, T, hidden]; cos/sin [T, D]."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.num_heads != self.num_kv_heads
        )  # [B, H, T, D]
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))


class Qwen2MLP(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Qwen2Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = Qwen2MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Model(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.text_config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Qwen2DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Dense causal pass over embeds [B, T, hidden] at positions 0..T-1; returns the
        final-normed hidden states [B, T, hidden]."""
        cfg = self.text_config
        positions = torch.arange(embeds.shape[1], device=embeds.device)
        cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, embeds.dtype)
        h = embeds
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.norm(h)


class Qwen2ForCausalLM(nn.Module):
    """The bare decoder plus head; VideoXL2ForCausalLM mirrors this layout."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.model = Qwen2Model(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.model.forward_embeds(self.model.embed_tokens(input_ids)))
