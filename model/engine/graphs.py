"""One-token decode steps at fixed shapes, replayed from a CUDA graph.

Owns: `DecodeGraph`, a batch-1 KV buffer of fixed capacity plus static token, position
and slot tensors, and `step()`: embed the token, per layer project, write its K/V at the
slot (index_copy_, so the slot is data, not shape), attend over the whole buffer with the
slots after it masked, and the greedy next token. On CUDA the step is captured once in a
torch.cuda.CUDAGraph and each token is one replay (about 1,300 kernel launches become
one); elsewhere the same step runs eagerly, which is how the CPU tests check its values.
`graph_for(runner, capacity)` keeps a few graphs per runner, keyed by capacity rounded up
to a bucket, so a question rarely captures.

Why: an eager decode step of the 7B decoder is bound by launches (about 25 ms per token
on an H100), not by reading the 15 GB of weights (about 5 ms).

Does not: prefill the question (the runner does, into this buffer) or pick stop tokens.
"""

from __future__ import annotations

import torch

from model.engine.runner import KVBuffer, Runner

BUCKET = 4096  # capacity granularity (tokens)
SPLIT = 256  # key block of the split value product in attend_one
KEEP = 2  # graphs kept per runner (each holds a KV buffer: ~1.2 GiB per 20k tokens at 7B)


def attend_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, visible: torch.Tensor
               ) -> torch.Tensor:
    """One query token per head q [B, H, 1, D] over k, v [B, Hkv, S, D] where `visible`
    [B, 1, 1, S] is True; query head j reads KV head j // (H / Hkv). Batched products that
    read each key and value once, softmax in fp32. The value product is split along S into
    blocks of SPLIT (summed after): as one product its output is a few hundred numbers
    reduced over S, which one GEMM runs on a handful of SMs."""
    b, h, _, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    g = h // hkv
    qg = q.reshape(b, hkv, g, d)  # [B, Hkv, G, D]
    scores = torch.matmul(qg, k.transpose(2, 3)).float() * (d ** -0.5)  # [B, Hkv, G, S]
    p = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1).to(v.dtype)
    if s % SPLIT:
        out = torch.matmul(p, v)
    else:  # [B, Hkv, P, G, SPLIT] @ [B, Hkv, P, SPLIT, D] -> summed over the P blocks
        pb = p.view(b, hkv, g, s // SPLIT, SPLIT).transpose(2, 3)
        out = torch.matmul(pb, v.view(b, hkv, s // SPLIT, SPLIT, d)).float().sum(dim=2)
    return out.to(v.dtype).reshape(b, h, 1, d)


def capture(fn, warmup: int = 2) -> torch.cuda.CUDAGraph:
    """fn's kernels captured in a CUDA graph, after `warmup` runs on a side stream (so that
    compilation, autotuning and allocations happen outside the capture)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


class DecodeGraph:
    """Static buffers and the (captured) one-token step of one capacity."""

    def __init__(self, runner: Runner, capacity: int, capture: bool | None = None) -> None:
        self.runner = runner
        self.capacity = capacity
        dev = runner.device
        like = runner.model.lm_head.weight
        self.buf = KVBuffer.empty(like, 1, capacity, runner.dims)
        self.token = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self.position = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)
        self.next_token = torch.zeros(1, dtype=torch.long, device=dev)
        self._slots = torch.arange(capacity, device=dev)
        self.capture = dev.type == "cuda" if capture is None else capture
        self.graph: torch.cuda.CUDAGraph | None = None

    def load(self, k: torch.Tensor, v: torch.Tensor) -> KVBuffer:
        """Put a rotated context [L, Hkv, T, D] at the front of the buffer; returns the
        buffer (length T) for the question's prefill."""
        n = k.shape[2]
        if n >= self.capacity:
            raise ValueError(f"context of {n} tokens does not fit capacity {self.capacity}")
        self.buf.k[:, 0, :, :n] = k
        self.buf.v[:, 0, :, :n] = v
        self.buf.valid.zero_()
        self.buf.valid[:, :n] = True
        self.buf.length, self.buf.padded = n, False
        return self.buf

    @torch.inference_mode()
    def _step(self) -> None:
        r, d = self.runner, self.runner.dims
        h = r.embed(self.token)  # [1, 1, hidden]
        cos, sin = r.rope.cos_sin(self.position, h.dtype)
        cos, sin = cos[:, None], sin[:, None]  # [1, 1, 1, D]
        visible = (self._slots <= self.slot)[None, None, None]  # [1, 1, 1, S]
        for i in range(d.n_layers):
            _q, _k, v, qr, kr = r.project(i, h, cos, sin, one_token=True)
            self.buf.k[i].index_copy_(2, self.slot, kr)
            self.buf.v[i].index_copy_(2, self.slot, v)
            o = attend_one(qr, self.buf.k[i], self.buf.v[i], visible)
            h = r.finish_layer(i, h, o, one_token=True)
        self.next_token.copy_(r.greedy_next(h))

    def step(self, token: int, position: int) -> int:
        """Decode `token` at `position` into the next slot; returns the greedy next token.
        The buffer's length grows by one."""
        if self.buf.length >= self.capacity:
            raise ValueError(f"decode buffer full at {self.capacity} tokens")
        self.token.fill_(token)
        self.position.fill_(position)
        self.slot.fill_(self.buf.length)
        if self.capture:
            if self.graph is None:
                self.graph = capture(self._step)
            self.graph.replay()
        else:
            self._step()
        self.buf.valid[:, self.buf.length] = True
        self.buf.length += 1
        return int(self.next_token)


def graph_for(runner: Runner, tokens: int) -> DecodeGraph:
    """A DecodeGraph of at least `tokens` capacity, reused across questions."""
    cache = runner.decode_graphs
    capacity = -(-tokens // BUCKET) * BUCKET
    graph = cache.pop(capacity, None) or DecodeGraph(runner, capacity)
    cache[capacity] = graph
    while len(cache) > KEEP:
        cache.popitem(last=False)
    return graph
