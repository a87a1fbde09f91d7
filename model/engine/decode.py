"""Bi-granularity decoding: choose dense and coarse chunks, assemble, decode greedily.

Owns: `select_chunks` (pure: the top-k scored chunks dense, the rest coarse, the
lowest-scoring coarse chunks dropped until the token budget holds, temporal order) and
`ask` (score the chunks of a range by relevance plus boosts, pin them while in use,
assemble prefix + chunks with contiguous RoPE, run the question and decode greedily until
`<|im_end|>` or `max_new_tokens`, parse the answer's time intervals), with its steps
`plan_question`, `assemble` and `greedy`. They take the engine's parts
(model.engine.parts: `QueryParts`) and the camera's records (`CameraRecords`, or for
`assemble` its `CameraMemory`), not the Engine.

Does not: map intervals to wall-clock time, store answers, or compute CV boosts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.engine import relevance
from model.engine.context import Context, chunk_segment, coarse_segment, gather
from model.engine.graphs import DecodeGraph, graph_for, width_for
from model.engine.parts import CameraRecords, QueryParts
from model.engine.records import ChunkMeta, DecodePlan, DecodeResult, Granularity
from model.engine.runner import KVBuffer
from model.engine.scheduler import CameraMemory
from model.engine.store import ChunkTensorStore, ChunkUnavailable
from model.intervals import parse_intervals


def select_chunks(camera: str, metas: list[ChunkMeta], scores: dict[int, float], top_k: int,
                  budget: int, fixed_tokens: int, ratio: int,
                  fine_available: set[int] | None = None) -> DecodePlan:
    """Top-k by score dense (if their fine KV exists), the others coarse, within budget.
    The plan names the top-k chunks whose fine KV is gone (`wanted_dense`, best first)."""
    by_seq = {m.seq: m for m in metas}
    ranked = sorted(by_seq, key=lambda s: (-scores.get(s, 0.0), s))
    can_dense = [s for s in ranked if fine_available is None or s in fine_available]
    dense = set(can_dense[:top_k])
    wanted = tuple(s for s in ranked[:top_k] if s not in dense)
    coarse = [s for s in ranked if s not in dense]  # best first
    dense_rank = [s for s in ranked if s in dense]

    cost = (fixed_tokens + sum(by_seq[s].n_tokens for s in dense)
            + sum(by_seq[s].n_coarse_tokens(ratio) for s in coarse))
    dropped = []
    while cost > budget and (coarse or dense):
        if coarse:
            s = coarse.pop()
            dropped.append(s)
            cost -= by_seq[s].n_coarse_tokens(ratio)
        else:  # even the dense set is too big: demote the weakest dense chunk
            s = dense_rank.pop()
            dense.discard(s)
            coarse.append(s)
            cost += by_seq[s].n_coarse_tokens(ratio) - by_seq[s].n_tokens
    chosen = sorted([(s, "dense") for s in dense] + [(s, "coarse") for s in coarse])
    return DecodePlan(camera=camera, chunks=tuple(chosen),
                      scores={s: float(scores.get(s, 0.0)) for s in by_seq},
                      dropped=tuple(sorted(dropped)), n_tokens=cost - fixed_tokens,
                      wanted_dense=wanted)


def check_question(question: str) -> None:
    if not question or not question.strip():
        raise ValueError(f"question must not be empty, got {question!r}")


def _chunk_metas(store: ChunkTensorStore, records: CameraRecords,
                 seq_range: tuple[int, int] | None) -> list[ChunkMeta]:
    """The camera's chunks in seq_range (default all) that the store still holds."""
    mem = records.memory
    lo, hi = seq_range if seq_range is not None else (-1, mem.last_seq)
    if lo > hi:
        raise ValueError(f"seq_range {seq_range!r} is empty (start after end)")
    records.prune(store)  # records older than anything stored were dropped by retention
    present = set(store.seqs(mem.camera))
    return [m for m in mem.history(before=hi + 1) if m.seq >= lo and m.seq in present]


def plan_question(parts: QueryParts, records: CameraRecords, question_ids: list[int],
                  seq_range: tuple[int, int] | None, boosts: dict[int, float] | None
                  ) -> DecodePlan:
    """Score the camera's chunks in seq_range against the question (relevance plus
    boosts) and choose which go dense, coarse or not at all (select_chunks)."""
    cfg, runner, store = parts.cfg, parts.runner, parts.store
    metas = _chunk_metas(store, records, seq_range)
    scores: dict[int, float] = {}
    found, summ = records.summaries.gather([m.seq for m in metas], store)
    keep = set(found)
    metas = [m for m in metas if m.seq in keep]  # lost chunks cannot be used
    if metas:
        graph = (relevance.question_graph(runner, parts.prefix)
                 if cfg.cuda_graphs and runner.device.type == "cuda" else None)
        qvec = relevance.question_vectors(runner, parts.prefix, question_ids, graph)
        raw = relevance.score_chunks(qvec, summ.to(qvec.device)).tolist()
        scores = {m.seq: r + (boosts or {}).get(m.seq, 0.0) for m, r in zip(metas, raw,
                                                                             strict=True)}
    camera = records.memory.camera
    fine = {m.seq for m in metas if store.has((camera, m.seq), "fine")}
    fixed = parts.prefix.n_tokens + len(question_ids) + cfg.max_new_tokens
    return select_chunks(camera, metas, scores, cfg.top_k, cfg.token_budget, fixed,
                         cfg.coarse_ratio, fine)


def assemble(parts: QueryParts, memory: CameraMemory, plan: DecodePlan,
             used: list[tuple[int, Granularity]] | None = None) -> Context:
    """Prefix + chosen chunks in temporal order, rotated contiguously. A dense chunk whose
    fine KV vanished since planning falls back to coarse; a lost chunk is left out.
    `used`, if given, receives what was really assembled."""
    segs = [parts.prefix]
    for seq, how in plan.chunks:
        key, meta = (plan.camera, seq), memory.metas[seq]
        for form in (("fine", "coarse") if how == "dense" else ("coarse",)):
            try:
                kv = parts.store.get(key, form)
            except ChunkUnavailable:
                continue
            segs.append(chunk_segment(meta, kv) if form == "fine"
                        else coarse_segment(meta, kv, parts.cfg.coarse_ratio))
            if used is not None:
                used.append((seq, "dense" if form == "fine" else "coarse"))
            break
    return gather(segs, parts.runner.rope, "contiguous")


def greedy(parts: QueryParts, ctx: Context, question_ids: list[int], max_new: int,
           graph: DecodeGraph | None = None) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens after the question (stop token excluded) and the first logits [V].
    With a DecodeGraph (model.engine.graphs: on CUDA with `cuda_graphs`, or `graph` when
    given, whose steps tests run eagerly) the question is one multi-token step and each
    further token one decode step, each a CUDA-graph replay; else one eager forward each."""
    runner, dev = parts.runner, parts.runner.device
    n_q = len(question_ids)
    width = width_for(n_q)  # the question as one captured step, padded to this width
    need = ctx.n_tokens + (width or n_q) + max_new + 1
    if graph is None and parts.cfg.cuda_graphs and dev.type == "cuda":
        graph = graph_for(runner, need)
    if graph is not None and width is not None:
        graph.load(ctx.k, ctx.v)
        first = graph.prefill(question_ids, ctx.next_position)[0].clone()
    else:
        if graph is not None:
            buf = graph.load(ctx.k, ctx.v)
        else:
            buf = KVBuffer.from_contexts([ctx.k], [ctx.v], extra=n_q + max_new + 1)
        pos = torch.arange(ctx.next_position, ctx.next_position + n_q, device=dev)
        out = runner.forward(runner.embed(torch.tensor(question_ids, device=dev))[None],
                             pos[None], buf, logits_at=torch.tensor([n_q - 1]))
        first = out.logits[0]
    pos0 = ctx.next_position + len(question_ids)
    nxt = int(first.argmax())
    out_ids: list[int] = []
    stop = {parts.prompt.im_end_id, getattr(parts.tokenizer, "eos_token_id", None)}
    while nxt not in stop and len(out_ids) < max_new:
        out_ids.append(nxt)
        if len(out_ids) == max_new:
            break  # the token after the last one is never used
        if graph is not None:
            nxt = graph.step(nxt, pos0)
        else:
            step = runner.forward(runner.embed(torch.tensor([nxt], device=dev))[None],
                                  torch.tensor([[pos0]], device=dev), buf,
                                  logits_at=torch.tensor([0]))
            nxt = int(step.logits[0].argmax())
        pos0 += 1
    return out_ids, first


def ask(parts: QueryParts, records: CameraRecords, question: str,
        seq_range: tuple[int, int] | None = None, boosts: dict[int, float] | None = None
        ) -> DecodeResult:
    """Answer `question` over the camera's chunks in seq_range (default all)."""
    return finish(parts, prepare(parts, records, question, seq_range, boosts))


@dataclass
class Prepared:
    """A question whose context is assembled: what `finish` decodes. It holds its own
    tensors (nothing aliases the store's pools), so the store may change meanwhile."""

    q_ids: list[int]
    ctx: Context
    used: list[tuple[int, Granularity]]
    scores: dict[int, float]
    graph: DecodeGraph | None
    wanted_dense: tuple[int, ...] = ()  # the plan's (DecodePlan.wanted_dense)


def prepare(parts: QueryParts, records: CameraRecords, question: str,
            seq_range: tuple[int, int] | None = None, boosts: dict[int, float] | None = None
            ) -> Prepared:
    """The half of `ask` that reads the store and the records: scores, plan, context.
    On CUDA with graphs it also captures the decode steps this question will replay, so
    that `finish` launches no capture (which must not overlap another thread's work)."""
    check_question(question)
    q_ids = list(parts.prompt.question_ids(question))
    plan = plan_question(parts, records, q_ids, seq_range, boosts)
    keys = [(plan.camera, s) for s, _ in plan.chunks]
    used: list[tuple[int, Granularity]] = []
    parts.store.pin(keys)  # keep them from being spilled while they are gathered
    try:
        ctx = assemble(parts, records.memory, plan, used)
        graph = None
        if parts.cfg.cuda_graphs and parts.runner.device.type == "cuda":
            n_q = len(q_ids)
            graph = graph_for(parts.runner, ctx.n_tokens + (width_for(n_q) or n_q)
                              + parts.cfg.max_new_tokens + 1)
            graph.ready([w for w in (width_for(n_q), 1) if w is not None])
        if parts.runner.device.type == "cuda":  # finish decodes on another stream
            torch.cuda.current_stream(parts.runner.device).synchronize()  # ctx is written
    finally:
        parts.store.unpin(keys)
    return Prepared(q_ids, ctx, used, plan.scores, graph, plan.wanted_dense)


def finish(parts: QueryParts, prepared: Prepared) -> DecodeResult:
    """The other half: decode the answer over the prepared context (no store access).
    On CUDA on a stream of its own: its per-token syncs then wait for its own kernels,
    not for a prefill step another thread queued meanwhile (the context is ready)."""
    runner = parts.runner
    if runner.device.type == "cuda":
        stream = getattr(runner, "question_stream", None)
        if stream is None:
            stream = runner.question_stream = torch.cuda.Stream(runner.device)
        with torch.cuda.stream(stream):
            ids, _ = greedy(parts, prepared.ctx, prepared.q_ids, parts.cfg.max_new_tokens,
                            graph=prepared.graph)
        stream.synchronize()
    else:
        ids, _ = greedy(parts, prepared.ctx, prepared.q_ids, parts.cfg.max_new_tokens,
                        graph=prepared.graph)
    text = parts.tokenizer.decode(ids, skip_special_tokens=True).strip()
    return DecodeResult(text=text, intervals=parse_intervals(text), chunks_used=prepared.used,
                        scores=prepared.scores, token_ids=ids)
