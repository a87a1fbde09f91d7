"""Standing yes/no questions: P("Yes") per question over one chunk's context, no generation.

Owns: assembling each chunk's own prefill context plus the chunk itself once, and running
every question of every requested chunk (several cameras at once) in one padded batch,
reading the next-token distribution at each question's last token.

Does not: threshold scores or raise alerts (pipeline alert rules do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from model.engine.context import KVSegment, chunk_segment, gather
from model.engine.records import plan_prefill_context
from model.engine.runner import KVBuffer

if TYPE_CHECKING:
    from model.engine.engine import Engine


def chunk_context_segments(eng: Engine, camera: str, seq: int) -> list[KVSegment]:
    mem = eng.memories.get(camera)
    if mem is None or seq not in mem.metas:
        raise KeyError(f"chunk seq {seq} of camera {camera!r} is not in memory")
    history = mem.history(before=seq, last=eng.scheduler.history_window())
    plan = plan_prefill_context(history, eng.prefix.n_tokens, eng.cfg.prev_chunks,
                                eng.cfg.max_headers)
    meta = mem.metas[seq]
    return [*eng.context_segments(camera, plan),
            chunk_segment(meta, eng.store.get((camera, seq), "fine"))]


def _check(questions: list[str]) -> None:
    for i, q in enumerate(questions):
        if not q or not q.strip():
            raise ValueError(f"questions[{i}] must not be empty, got {q!r}")


def yes_probabilities_batch(eng: Engine, requests: list[tuple[str, int, list[str]]]
                            ) -> list[list[float]]:
    """requests: (camera, seq, questions) -> P(Yes) per question, all in one forward."""
    runner, dev = eng.runner, eng.runner.device
    rows_k, rows_v, ids, starts = [], [], [], []
    for camera, seq, questions in requests:
        _check(questions)
        ctx = gather(chunk_context_segments(eng, camera, seq), runner.rope, "contiguous")
        for q in questions:
            rows_k.append(ctx.k)
            rows_v.append(ctx.v)
            ids.append(list(eng.prompt.question_ids(q)))
            starts.append(ctx.next_position)
    if not ids:
        return [[] for _ in requests]
    tmax = max(len(x) for x in ids)
    buf = KVBuffer.from_contexts(rows_k, rows_v, extra=tmax)
    padded = torch.tensor([x + [x[-1]] * (tmax - len(x)) for x in ids], device=dev)
    # Each row continues right after its own context; pad slots of shorter contexts are
    # masked out, so only positions need to differ per row.
    pos = torch.tensor(starts, device=dev)[:, None] + torch.arange(tmax, device=dev)[None]
    last = torch.tensor([len(x) - 1 for x in ids], device=dev)
    out = runner.forward(runner.embed(padded), pos, buf, logits_at=last)
    probs = torch.softmax(out.logits.float(), dim=-1)  # [rows, V]
    yes = probs[:, torch.tensor(list(eng.prompt.yes_ids), device=dev)].sum(-1).tolist()
    result, i = [], 0
    for _c, _s, questions in requests:
        result.append(yes[i:i + len(questions)])
        i += len(questions)
    return result


def yes_probabilities(eng: Engine, camera: str, seq: int, questions: list[str]) -> list[float]:
    return yes_probabilities_batch(eng, [(camera, seq, questions)])[0]
