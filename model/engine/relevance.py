"""Training-free chunk relevance from the model's own attention.

Owns: the question's per-layer query vectors (pre-RoPE queries of the question tokens,
run after the system prefix, averaged over tokens and over the query heads that share a
KV head: [L, Hkv, D]) and the score of a chunk: the scaled dot product of those vectors
with the chunk's summary key (mean pre-RoPE visual key, [L, Hkv, D]), averaged over
layers and KV heads, plus an optional external boost.

Does not: pick chunks (decode.select_chunks) or load summaries (the engine does).
"""

from __future__ import annotations

import torch

from model.engine.context import KVSegment
from model.engine.runner import Runner


def question_vectors(runner: Runner, prefix: KVSegment, question_ids: list[int]) -> torch.Tensor:
    """[L, Hkv, D] mean pre-RoPE query of the question (after the system prefix)."""
    dev = runner.device
    ids = torch.tensor(question_ids, device=dev)
    n = prefix.n_tokens
    ctx_k = runner.rope.rotate(prefix.k, torch.arange(n, device=dev))[:, None]
    pos = torch.arange(n, n + len(question_ids), device=dev)[None]
    valid = torch.ones(1, n, dtype=torch.bool, device=dev)
    out = runner.forward(runner.embed(ids)[None], pos, ctx_k, prefix.v[:, None], valid,
                         capture_queries=True)
    q = out.queries[:, 0].mean(dim=2)  # [L, Hq, D]
    d = runner.dims
    return q.view(d.n_layers, d.n_kv_heads, d.n_heads // d.n_kv_heads, d.head_dim).mean(2)


def score_chunks(qvec: torch.Tensor, summaries: torch.Tensor) -> torch.Tensor:
    """qvec [L, Hkv, D], summaries [N, L, Hkv, D] -> [N] relevance scores."""
    dots = (summaries.float() * qvec.float()[None]).sum(-1) / qvec.shape[-1] ** 0.5
    return dots.mean(dim=(1, 2))
