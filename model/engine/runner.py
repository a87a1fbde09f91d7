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

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

from model.engine import blocks
from model.engine.layout import StepLayout
from model.layers import Rope, apply_rope


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
    padded: bool = False  # some context is shorter than `length` (known without a sync)

    @classmethod
    @torch.inference_mode()
    def from_contexts(cls, ks: list[torch.Tensor], vs: list[torch.Tensor], extra: int
                      ) -> KVBuffer:
        """Right-pad contexts [L, Hkv, Tc_i, D] to a common length, plus `extra` slots."""
        n_layers, h, _, d = ks[0].shape
        shape = (n_layers, len(ks), h, max(k.shape[2] for k in ks) + extra, d)
        return cls.filled(ks[0].new_zeros(shape), ks[0].new_zeros(shape), ks, vs)

    @classmethod
    def filled(cls, k: torch.Tensor, v: torch.Tensor, ks: list[torch.Tensor],
               vs: list[torch.Tensor]) -> KVBuffer:
        """A buffer over storage k, v [L, B, Hkv, S, D] with context i copied to row i."""
        lens = [c.shape[2] for c in ks]
        valid = torch.zeros(len(ks), k.shape[3], dtype=torch.bool, device=k.device)
        for i, (ki, vi) in enumerate(zip(ks, vs, strict=True)):
            k[:, i, :, :lens[i]] = ki
            v[:, i, :, :lens[i]] = vi
            valid[i, :lens[i]] = True
        return cls(k=k, v=v, valid=valid, length=max(lens), padded=len(set(lens)) > 1)

    @classmethod
    def empty(cls, like: torch.Tensor, batch: int, capacity: int, dims: TextDims) -> KVBuffer:
        shape = (dims.n_layers, batch, dims.n_kv_heads, capacity, dims.head_dim)
        return cls(k=like.new_zeros(shape), v=like.new_zeros(shape),
                   valid=torch.zeros(batch, capacity, dtype=torch.bool, device=like.device),
                   length=0)


class PrefillArena:
    """Storage reused by every prefill step's KVBuffer: contexts are copied into views of
    it instead of a freshly allocated, zero-filled buffer per step (slots past a context
    are never attended: dense contexts are sliced, padded ones masked by `valid`). Grows,
    with headroom, when a step needs more cameras or tokens than it holds."""

    HEADROOM = 1024  # tokens

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # [L, B, Hkv, S, D]
        self.v: torch.Tensor | None = None

    @torch.inference_mode()
    def buffer(self, ks: list[torch.Tensor], vs: list[torch.Tensor], extra: int) -> KVBuffer:
        b, need = len(ks), max(k.shape[2] for k in ks) + extra
        n_layers, h, _, d = ks[0].shape
        if (self.k is None or self.k.shape[1] < b or self.k.shape[3] < need
                or self.k.dtype != ks[0].dtype or self.k.device != ks[0].device):
            self.k = self.v = None  # free the old storage before taking the new
            cap = -(-need // self.HEADROOM) * self.HEADROOM + self.HEADROOM
            shape = (n_layers, b, h, cap, d)
            # zeroed once: a masked slot's weight is 0, and 0 * NaN (uninitialised) is NaN
            self.k, self.v = ks[0].new_zeros(shape), ks[0].new_zeros(shape)
        return KVBuffer.filled(self.k[:, :b, :, :need], self.v[:, :b, :, :need], ks, vs)


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
        # On CUDA, SDPA with a boolean mask and enable_gqa falls back to the math kernel
        # (scores materialised): attend with a lower-right causal bias (flash kernel, KV
        # heads shared natively) when every context slot is valid, and with the boolean mask
        # and KV heads expanded only when contexts of a batch differ in length.
        # Off on the CPU, where the plain masked call is the tested reference path.
        self.fast_attention = self.device.type == "cuda"
        self._blocks: tuple | None = None  # (pre, post, per-layer weights): use_blocks()
        self._decode_blocks: tuple | None = None  # (pre, post, head) for one-token steps
        # capacity -> DecodeGraph, oldest first; kept by model.engine.graphs.graph_for
        self.decode_graphs: OrderedDict[int, object] = OrderedDict()
        self.question_graph: object | None = None  # relevance.question_graph's DecodeGraph

    def use_blocks(self, compile: bool = True, decode_kernels: bool = True) -> bool:
        """Run each layer as two fused blocks (model.engine.blocks), through torch.compile
        unless compile=False (tests); compiled, one-token decode steps get their own
        compilation (matrix-vector kernels, greedy head fused) unless decode_kernels=False
        (they then call the prefill blocks, cuBLAS products). False, and nothing
        changes, when a layer's projections are neither all plain nn.Linear nor all
        FP8Linear."""
        # fusing a layer that then declines changes no value (its modules share the memory)
        weights = [blocks.layer_weights(layer) for layer in self.model.model.layers]
        if any(w is None for w in weights):
            return False
        pre, post = blocks.compiled() if compile else (blocks.pre_attention,
                                                        blocks.post_attention)
        self._blocks = (pre, post, weights)
        self._decode_blocks = blocks.compiled_decode() if compile and decode_kernels else None
        return True

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
        dense = not s or not buf.padded  # no padding inside the contexts
        mask = None  # the fast path's dense attention needs none: built only when used
        if not (self.fast_attention and dense):
            causal = torch.ones(t, t, dtype=torch.bool, device=emb.device).tril()
            mask = torch.cat([buf.valid[:, None, None, :s].expand(b, 1, t, s),
                              causal.expand(b, 1, t, t)], dim=-1)  # [B, 1, T, s + T]
        ks, vs, qs = [], [], []
        h = emb
        for i in range(d.n_layers):
            q, k, v, qr, kr = self.project(i, h, cos, sin)
            ks.append(k)
            vs.append(v)
            if capture_queries:
                qs.append(q)
            buf.k[i, :, :, s:e] = kr
            buf.v[i, :, :, s:e] = v
            o = self._attend(qr, buf.k[i, :, :, :e], buf.v[i, :, :, :e], mask, dense)
            h = self.finish_layer(i, h, o)
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

    @torch.inference_mode()
    def prefill(self, emb: torch.Tensor, layout: StepLayout, buf: KVBuffer) -> RunOutput:
        """A prefill step: emb [B, t, hidden], row r's static context already in `buf` row
        r at [0, static); per layer the step's fresh keys are copied (rotated at each
        reader's positions) to every row that sees them (model.engine.layout), then each
        row's own tokens attend causally to their whole row. Returns the own tokens'
        pre-RoPE K/V [L, B, Hkv, t, D] (padded tokens included: callers cut them)."""
        b, t, _ = emb.shape
        d = self.dims
        cos, sin = self.rope.cos_sin(layout.positions, emb.dtype)
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, t, D]
        ccos, csin = layout.copy_rotation(self.rope, emb.dtype)
        ks, vs = [], []
        h = emb
        for i in range(d.n_layers):
            _q, k, v, qr, _kr = self.project(i, h, cos, sin)
            ks.append(k)
            vs.append(v)
            kn = k.transpose(1, 2).reshape(b * t, d.n_kv_heads, d.head_dim)[layout.src]
            vn = v.transpose(1, 2).reshape(b * t, d.n_kv_heads, d.head_dim)[layout.src]
            buf.k[i][layout.dst_row, :, layout.dst_slot] = apply_rope(kn, ccos, csin)
            buf.v[i][layout.dst_row, :, layout.dst_slot] = vn
            o = self._attend_rows(qr, buf.k[i], buf.v[i], layout)
            h = self.finish_layer(i, h, o)
        for r, row in enumerate(layout.rows):
            buf.valid[r, :row.length] = True
        buf.length = max(row.length for row in layout.rows)
        return RunOutput(k=torch.stack(ks), v=torch.stack(vs), logits=None, queries=None)

    def greedy_next(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy next token [B] after the last position of h [B, T, hidden]."""
        norm = self.model.model.norm
        if self._decode_blocks is not None and isinstance(self.model.lm_head.weight,
                                                          torch.Tensor):
            return self._decode_blocks[2](h, norm.weight, norm.variance_epsilon,
                                          self.model.lm_head.weight)
        return self.model.lm_head(norm(h[:, -1])).argmax(dim=-1)

    def _attend_rows(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     layout: StepLayout) -> torch.Tensor:
        """q [B, H, t, D] of each row's own tokens over its row of k, v [B, Hkv, S, D]:
        slots before the own tokens fully, own tokens causally. Reference: SDPA with the
        layout's mask. Fast paths: rows whose own tokens start at one slot (live cameras of
        one age) in one dense flash call; otherwise the rows' real queries and valid keys
        packed back to back for one variable-length flash call (KV heads shared)."""
        if not self.fast_attention:
            gqa = self.dims.n_heads != self.dims.n_kv_heads
            mask = layout.mask(k.shape[2], k.device)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        if layout.same_start:  # padded tails hold stale slots: only padded queries see them
            end = layout.rows[0].static + layout.t
            return self._attend(q, k[:, :, :end], v[:, :, :end], None, dense=True)
        pk = layout.packing(q.device)
        qp = q.transpose(1, 2)[pk["q_row"], pk["q_tok"]]  # [total_q, H, D]
        kp = k[pk["k_row"], :, pk["k_slot"]]  # [total_k, Hkv, D]
        vp = v[pk["k_row"], :, pk["k_slot"]]
        out = varlen_attention(qp, kp, vp, pk)
        o = q.new_zeros(q.shape[0], q.shape[2], q.shape[1], q.shape[3])  # [B, t, H, D]
        o[pk["q_row"], pk["q_tok"]] = out
        return o.transpose(1, 2)

    def project(self, i: int, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                one_token: bool = False) -> tuple[torch.Tensor, ...]:
        """Layer i's input norm and projections of h [B, T, hidden]: q, k, v (pre-RoPE) and
        rotated q, k, each [B, heads, T, D]; cos/sin [B, 1, T, D]. `one_token`: a decode
        step (its own compiled blocks, where there are)."""
        d = self.dims
        if self._blocks is not None:
            pre, _post, weights = self._blocks
            if one_token and self._decode_blocks is not None:
                pre = self._decode_blocks[0]
            return pre(h, weights[i], cos, sin, d.n_heads, d.n_kv_heads, d.head_dim)
        b, t, _ = h.shape
        layer = self.model.model.layers[i]
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        q = attn.q_proj(x).view(b, t, d.n_heads, d.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(b, t, d.n_kv_heads, d.head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(b, t, d.n_kv_heads, d.head_dim).transpose(1, 2)
        return q, k, v, apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def finish_layer(self, i: int, h: torch.Tensor, o: torch.Tensor,
                     one_token: bool = False) -> torch.Tensor:
        """Layer i after attention: h [B, T, hidden] plus o [B, H, T, D] projected, then the
        MLP residual."""
        b, _h, t, _d = o.shape
        o = o.transpose(1, 2).reshape(b, t, self.dims.n_heads * self.dims.head_dim)
        if self._blocks is not None:
            _pre, post, weights = self._blocks
            if one_token and self._decode_blocks is not None:
                post = self._decode_blocks[1]
            return post(h, o, weights[i])
        layer = self.model.model.layers[i]
        h = h + layer.self_attn.o_proj(o)
        return h + layer.mlp(layer.post_attention_layernorm(h))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None, dense: bool) -> torch.Tensor:
        """q [B, H, T, D] over k, v [B, Hkv, S + T, D]: context fully, new tokens causally."""
        gqa = self.dims.n_heads != self.dims.n_kv_heads
        if not self.fast_attention:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        t, e = q.shape[2], k.shape[2]
        if dense and t == 1:  # one new token sees everything: no mask, GQA kernels
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        if dense:  # flash attention with lower-right causal alignment and native GQA
            return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(t, e),
                                                  enable_gqa=gqa)
        if gqa:  # HF's repeat_kv layout: query head j reads KV head j // groups
            groups = self.dims.n_heads // self.dims.n_kv_heads
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pk: dict) -> torch.Tensor:
    """Causal (lower-right aligned) attention of packed sequences q [Tq, H, D] over
    k, v [Tk, Hkv, D], sequence i at cu_q[i]:cu_q[i+1] and cu_k[i]:cu_k[i+1]. On CUDA one
    flash-attention call (the kernel shares KV heads natively); elsewhere the same,
    sequence by sequence, through SDPA (the reference the CPU tests run)."""
    if q.is_cuda:
        return torch.ops.aten._flash_attention_forward(
            q, k, v, pk["cu_q"], pk["cu_k"], pk["max_q"], pk["max_k"], 0.0, True, False)[0]
    cu_q, cu_k = pk["cu_q"].tolist(), pk["cu_k"].tolist()
    out = []
    for i in range(len(cu_q) - 1):
        qi = q[cu_q[i]:cu_q[i + 1]].transpose(0, 1)[None]  # [1, H, tq, D]
        ki = k[cu_k[i]:cu_k[i + 1]].transpose(0, 1)[None]
        vi = v[cu_k[i]:cu_k[i + 1]].transpose(0, 1)[None]
        bias = causal_lower_right(qi.shape[2], ki.shape[2])
        o = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=bias,
                                           enable_gqa=qi.shape[1] != ki.shape[1])
        out.append(o[0].transpose(0, 1))
    return torch.cat(out)
