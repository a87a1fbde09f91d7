"""Training-free chunk relevance from the model's own attention.

Owns: the question's per-layer query vectors (pre-RoPE queries of the question tokens,
run after the system prefix, averaged over tokens and over the query heads that share a
KV head: [L, Hkv, D]) and the score of a chunk: the scaled dot product of those vectors
with the chunk's summary key (mean pre-RoPE visual key, [L, Hkv, D]), averaged over
layers and KV heads, plus an optional external boost.

Also owns `SummaryBank`: one camera's summary keys stacked in one tensor, so that scoring
a long window is one product instead of one store read per chunk.

Does not: pick chunks (decode.select_chunks).
"""

from __future__ import annotations

import torch

from model.engine.context import KVSegment
from model.engine.graphs import BUCKET, WIDTHS, DecodeGraph, width_for
from model.engine.runner import KVBuffer, Runner
from model.engine.store import ChunkTensorStore, ChunkUnavailable


def question_vectors(runner: Runner, prefix: KVSegment, question_ids: list[int],
                     graph: DecodeGraph | None = None) -> torch.Tensor:
    """[L, Hkv, D] mean pre-RoPE query of the question (after the system prefix). With a
    DecodeGraph (question_graph: its multi-token step replayed, CUDA) or else one forward."""
    dev = runner.device
    n = prefix.n_tokens
    ctx_k = runner.rope.rotate(prefix.k, torch.arange(n, device=dev))
    if graph is not None and width_for(len(question_ids)) is not None:
        graph.load(ctx_k, prefix.v)
        q = graph.prefill(question_ids, n, queries=True)[1].mean(dim=2)  # [L, Hq, D]
    else:
        ids = torch.tensor(question_ids, device=dev)
        buf = KVBuffer.from_contexts([ctx_k], [prefix.v], extra=len(question_ids))
        pos = torch.arange(n, n + len(question_ids), device=dev)[None]
        out = runner.forward(runner.embed(ids)[None], pos, buf, capture_queries=True)
        q = out.queries[:, 0].mean(dim=2)  # [L, Hq, D]
    d = runner.dims
    return q.view(d.n_layers, d.n_kv_heads, d.n_heads // d.n_kv_heads, d.head_dim).mean(2)


def question_graph(runner: Runner, prefix: KVSegment) -> DecodeGraph:
    """The runner's DecodeGraph for relevance queries: the prefix plus one question."""
    need = prefix.n_tokens + WIDTHS[-1] + 1
    graph = runner.question_graph
    if graph is None or graph.capacity < need:
        graph = runner.question_graph = DecodeGraph(runner, -(-need // BUCKET) * BUCKET)
    return graph


def score_chunks(qvec: torch.Tensor, summaries: torch.Tensor) -> torch.Tensor:
    """qvec [L, Hkv, D], summaries [N, L, Hkv, D] -> [N] relevance scores."""
    dots = (summaries.float() * qvec.float()[None]).sum(-1) / qvec.shape[-1] ** 0.5
    return dots.mean(dim=(1, 2))


class SummaryBank:
    """Summary keys [L, Hkv, D] of one camera's chunks, rows in a growing tensor.

    Filled as chunks are prefilled and, after a restart, lazily from the store's coarse
    form. About L * Hkv * D * 2 bytes per chunk (28 KiB at the real sizes in bf16); at
    `capacity` rows the oldest quarter is forgotten (re-read from the store if asked for).
    """

    def __init__(self, camera: str, capacity: int = 1024) -> None:
        self.camera = camera
        self.capacity = capacity
        self.rows: dict[int, int] = {}  # seq -> row
        self.data: torch.Tensor | None = None

    def add(self, seq: int, summary: torch.Tensor) -> None:
        if seq in self.rows:
            self.data[self.rows[seq]] = summary
            return
        if len(self.rows) >= self.capacity:
            oldest = sorted(self.rows)
            self.forget_before(oldest[len(oldest) // 4])
        n = len(self.rows)
        if self.data is None or n == self.data.shape[0]:
            grown = summary.new_empty((min(self.capacity, max(16, 2 * n)), *summary.shape))
            if self.data is not None:
                grown[:n] = self.data
            self.data = grown
        self.data[n] = summary
        self.rows[seq] = n

    def gather(self, seqs: list[int], store: ChunkTensorStore
               ) -> tuple[list[int], torch.Tensor | None]:
        """(seqs found, [n, L, Hkv, D]); summaries not held yet are read from the store,
        chunks the store cannot serve are left out."""
        for seq in seqs:
            if seq not in self.rows:
                try:
                    self.add(seq, store.get((self.camera, seq), "coarse")["summary"])
                except ChunkUnavailable:
                    continue
        found = [s for s in seqs if s in self.rows]
        if not found:
            return [], None
        idx = torch.tensor([self.rows[s] for s in found], device=self.data.device)
        return found, self.data.index_select(0, idx)

    def forget_before(self, seq: int) -> None:
        keep = sorted(s for s in self.rows if s >= seq)
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.data = {}, None
            return
        idx = torch.tensor([self.rows[s] for s in keep], device=self.data.device)
        self.data = self.data.index_select(0, idx)
        self.rows = {s: i for i, s in enumerate(keep)}
