"""Decode steps at fixed shapes, replayed from CUDA graphs.

Owns: `DecodeGraph`, a batch-1 KV buffer of fixed capacity plus static token, position
and slot tensors, with two kinds of step. `step()` decodes one token: embed it, per layer
project, write its K/V at the slot (index_copy_, so the slot is data, not shape), attend
over the whole buffer with the slots after it masked, and the greedy next token.
`prefill()` runs a question (up to 128 tokens, padded to a width of WIDTHS) the same way
and returns its last logits and, if asked, its queries (relevance). On CUDA each kind is
captured once per width in a torch.cuda.CUDAGraph and replayed (about 1,300 kernel
launches become one); elsewhere the same steps run eagerly, which is how the CPU tests
check their values. `graph_for(runner, capacity)` keeps a few graphs per runner, keyed by
capacity rounded up to a bucket, so a question rarely captures.

Why: an eager decode step of the 7B decoder is bound by launches (about 25 ms per token
on an H100), not by reading the 15 GB of weights (about 5 ms); a question's eager
prefill took 29.9 ms to issue against a 7.6 ms replay (docs/BENCHMARKS.md, GPU run 3).

Does not: choose the context (decode.assemble) or pick stop tokens.
"""

from __future__ import annotations

import torch

from model.engine.runner import KVBuffer, Runner

BUCKET = 512  # capacity granularity (tokens): every slot of the capacity is read per step
WIDTHS = (16, 32, 64, 128)  # token-count buckets of the captured multi-token steps
SPLIT = 256  # key block of the split value product in attend_static
KEEP = 2  # graphs kept per runner (each holds a KV buffer: ~1.2 GiB per 20k tokens at 7B)


def attend_static(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, visible: torch.Tensor
                  ) -> torch.Tensor:
    """Query tokens q [B, H, T, D] over k, v [B, Hkv, S, D] where `visible` [B, 1, T, S] is
    True; query head j reads KV head j // (H / Hkv). Batched products that read each key
    and value once, softmax accumulated in fp32, at fixed shapes (what a CUDA graph replays). The
    value product is split along S into blocks of SPLIT (summed after): as one product
    its output is a few hundred numbers reduced over S, which one GEMM runs on a handful
    of SMs."""
    b, h, t, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    rows = (h // hkv) * t  # the query heads of a KV head, times the tokens
    qg = q.reshape(b, hkv, rows, d)
    vis = visible[:, :, None].expand(b, 1, h // hkv, t, s).reshape(b, 1, rows, s)
    scores = torch.matmul(qg * d ** -0.5, k.transpose(2, 3))  # [B, Hkv, rows, S]
    # softmax accumulates in fp32 for bf16 input on CUDA and CPU: no fp32 copy of the scores
    p = scores.masked_fill(~vis, float("-inf")).softmax(dim=-1)
    if s % SPLIT:
        out = torch.matmul(p, v)
    else:  # [B, Hkv, P, rows, SPLIT] @ [B, Hkv, P, SPLIT, D] -> summed over the P blocks
        pb = p.view(b, hkv, rows, s // SPLIT, SPLIT).transpose(2, 3)
        out = torch.matmul(pb, v.view(b, hkv, s // SPLIT, SPLIT, d)).float().sum(dim=2)
    return out.to(v.dtype).reshape(b, h, t, d)


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
    # thread_local: the capture forbids unsafe CUDA calls in this thread only; the KV disk
    # writer's event syncs and a question decoding beside the steps go on meanwhile (the
    # default, global, failed their calls: seen on the H200 at 192 cameras).
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        fn()
    return graph


def width_for(n: int) -> int | None:
    """The smallest captured multi-token width that holds n tokens (None: too many)."""
    return next((w for w in WIDTHS if w >= n), None) if n > 0 else None


class DecodeGraph:
    """A batch-1 KV buffer of one capacity and its (captured) steps: one token, or a few."""

    def __init__(self, runner: Runner, capacity: int, capture: bool | None = None) -> None:
        self.runner = runner
        self.capacity = capacity
        dev = runner.device
        self.buf = KVBuffer.empty(runner.model.lm_head.weight, 1, capacity, runner.dims)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)  # the step's first slot
        self._slots = torch.arange(capacity, device=dev)
        self.capture = dev.type == "cuda" if capture is None else capture
        self._steps: dict[int, _Step] = {}  # width -> static tensors (+ graph) of its step

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

    def prefill(self, ids: list[int], position: int, queries: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run `ids` (at most WIDTHS[-1]) at positions position.. into the next slots,
        attending to the buffer and causally to each other: one replay of the step
        captured for the smallest width that holds them (the tail is padding whose slots
        later steps overwrite and nothing sees). Returns the last token's logits [V] and,
        if `queries`, the tokens' pre-RoPE queries [L, H, n, D]. Length grows by n."""
        n = len(ids)
        width = width_for(n)
        if width is None:
            raise ValueError(f"{n} tokens do not fit a captured step (1..{WIDTHS[-1]})")
        if self.buf.length + width > self.capacity:
            raise ValueError(f"{n} tokens (width {width}) do not fit capacity "
                             f"{self.capacity} after {self.buf.length}")
        st = self._step(width)
        st.ids.zero_()
        st.ids[0, :n] = torch.tensor(ids)
        st.positions.copy_(position + st.ar)
        st.last.fill_(n - 1)
        st.want_queries = st.want_queries or queries  # captured with them once asked
        self._run(st, n)
        return st.logits[0], (st.queries[:, 0, :, :n] if queries else None)

    def step(self, token: int, position: int) -> int:
        """Decode `token` at `position` into the next slot; returns the greedy next token.
        The buffer's length grows by one."""
        if self.buf.length >= self.capacity:
            raise ValueError(f"decode buffer full at {self.capacity} tokens")
        st = self._step(1)
        st.ids.fill_(token)
        st.positions.fill_(position)
        self._run(st, 1)
        return int(st.next_token)

    def ready(self, widths: list[int]) -> None:
        """Capture the steps of these widths now if they are not yet (a replay later
        captures nothing)."""
        if not self.capture:
            return
        self.slot.fill_(0)  # warm-up runs write slots 0..width: load() resets them after
        for width in widths:
            st = self._step(width)
            if st.graph is None or st.graph_queries != st.want_queries:
                st.graph = capture(st.run)
                st.graph_queries = st.want_queries

    def _step(self, width: int) -> _Step:
        if width not in self._steps:
            self._steps[width] = _Step(self, width)
        return self._steps[width]

    def _run(self, st: _Step, n: int) -> None:
        """Replay (capturing first, or again when it must now keep queries) or run st at
        the current length; then n more slots are valid."""
        self.slot.fill_(self.buf.length)
        if self.capture:
            if st.graph is None or st.graph_queries != st.want_queries:
                st.graph = capture(st.run)
                st.graph_queries = st.want_queries
            st.graph.replay()
        else:
            st.run()
        self.buf.valid[:, self.buf.length:self.buf.length + n] = True
        self.buf.length += n


class _Step:
    """Static inputs and outputs of a DecodeGraph's step of one width. Width 1 is a decode
    step: the one-token blocks and the fused greedy head (next_token); wider steps return
    the last real token's logits and, when asked, every token's queries."""

    def __init__(self, owner: DecodeGraph, width: int) -> None:
        r, d, dev = owner.runner, owner.runner.dims, owner.runner.device
        like = r.model.lm_head.weight
        self.owner, self.width = owner, width
        self.ids = torch.zeros(1, width, dtype=torch.long, device=dev)
        self.ar = torch.arange(width, device=dev)
        self.positions = torch.zeros(1, width, dtype=torch.long, device=dev)
        self.last = torch.zeros(1, dtype=torch.long, device=dev)
        self.next_token = torch.zeros(1, dtype=torch.long, device=dev)
        self.logits = torch.zeros(1, like.shape[0], device=dev, dtype=like.dtype)
        self.queries = (torch.zeros(d.n_layers, 1, d.n_heads, width, d.head_dim, device=dev,
                                    dtype=like.dtype) if width > 1 else None)
        self.want_queries = False
        self.graph_queries = False
        self.graph: torch.cuda.CUDAGraph | None = None

    @torch.inference_mode()
    def run(self) -> None:
        g, r = self.owner, self.owner.runner
        one = self.width == 1
        h = r.embed(self.ids)  # [1, W, hidden]
        cos, sin = r.rope.cos_sin(self.positions, h.dtype)
        cos, sin = cos[:, None], sin[:, None]  # [1, 1, W, D]
        slots = g.slot + self.ar  # [W]
        visible = (g._slots[None, :] <= slots[:, None])[None, None]  # [1, 1, W, S]
        for i in range(r.dims.n_layers):
            q, _k, v, qr, kr = r.project(i, h, cos, sin, one_token=one)
            g.buf.k[i].index_copy_(2, slots, kr)
            g.buf.v[i].index_copy_(2, slots, v)
            if self.want_queries:
                self.queries[i].copy_(q)
            o = attend_static(qr, g.buf.k[i], g.buf.v[i], visible)
            h = r.finish_layer(i, h, o, one_token=one)
        if one:
            self.next_token.copy_(r.greedy_next(h))
        else:
            last = h.index_select(1, self.last)  # [1, 1, hidden]
            self.logits.copy_(r.model.lm_head(r.model.model.norm(last))[:, 0])


def graph_for(runner: Runner, tokens: int) -> DecodeGraph:
    """A DecodeGraph of at least `tokens` capacity, reused across questions."""
    cache = runner.decode_graphs
    capacity = -(-tokens // BUCKET) * BUCKET
    graph = cache.pop(capacity, None) or DecodeGraph(runner, capacity)
    cache[capacity] = graph
    while len(cache) > KEEP:
        cache.popitem(last=False)
    return graph
