"""Standing yes/no questions: P("Yes") per question over one chunk's context, no generation.

Owns: assembling a chunk's own prefill context plus the chunk itself once, and running
many questions against it in one padded batch, reading the next-token distribution at
each question's last token.

Does not: threshold scores or raise alerts (pipeline alert rules do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from model.engine.context import chunk_segment, gather
from model.engine.records import plan_prefill_context

if TYPE_CHECKING:
    from model.engine.engine import Engine


def chunk_context_segments(eng: Engine, camera: str, seq: int) -> list:
    mem = eng.memories.get(camera)
    if mem is None or seq not in mem.metas:
        raise KeyError(f"chunk seq {seq} of camera {camera!r} is not in memory")
    history = mem.history(before=seq, last=eng.scheduler.history_window())
    plan = plan_prefill_context(history, eng.prefix.n_tokens, eng.cfg.prev_chunks,
                                eng.cfg.max_headers)
    meta = mem.metas[seq]
    return [*eng.context_segments(camera, plan),
            chunk_segment(meta, eng.store.get((camera, seq), "fine"))]


def yes_probabilities(eng: Engine, camera: str, seq: int, questions: list[str]) -> list[float]:
    if not questions:
        return []
    for i, q in enumerate(questions):
        if not q or not q.strip():
            raise ValueError(f"questions[{i}] must not be empty, got {q!r}")
    runner, dev = eng.runner, eng.runner.device
    ctx = gather(chunk_context_segments(eng, camera, seq), runner.rope, "contiguous")
    ids = [list(eng.prompt.question_ids(q)) for q in questions]
    b, tmax = len(ids), max(len(x) for x in ids)
    padded = torch.tensor([x + [x[-1]] * (tmax - len(x)) for x in ids], device=dev)
    pos = ctx.next_position + torch.arange(tmax, device=dev)[None].expand(b, -1)
    valid = torch.ones(b, ctx.n_tokens, dtype=torch.bool, device=dev)
    ctx_k = ctx.k[:, None].expand(-1, b, -1, -1, -1)
    ctx_v = ctx.v[:, None].expand(-1, b, -1, -1, -1)
    last = torch.tensor([len(x) - 1 for x in ids], device=dev)
    out = runner.forward(runner.embed(padded), pos, ctx_k, ctx_v, valid, logits_at=last)
    probs = torch.softmax(out.logits.float(), dim=-1)  # [B, V]
    yes = torch.tensor(list(eng.prompt.yes_ids), device=dev)
    return probs[:, yes].sum(-1).tolist()
