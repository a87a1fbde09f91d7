"""Standing yes/no questions: P("Yes") per question over one chunk's context, no generation.

Owns: assembling each chunk's own prefill context plus the chunk itself once, and running
every question of every requested chunk (several cameras at once) in one padded batch,
reading the next-token distribution at each question's last token. The functions take
the engine's parts (model.engine.parts: `QueryParts`, whose `context_segments` supplies
the stored context) and the cameras' records (`CameraMemory` by camera), not the Engine.

Does not: threshold scores or raise alerts (pipeline alert rules do).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from model.engine.context import KVSegment, chunk_segment, gather
from model.engine.parts import QueryParts
from model.engine.records import plan_prefill_context
from model.engine.runner import KVBuffer
from model.engine.scheduler import CameraMemory


def chunk_context_segments(parts: QueryParts, memories: Mapping[str, CameraMemory],
                           camera: str, seq: int) -> list[KVSegment]:
    """The segments chunk `seq` was prefilled over, then the chunk's own fine KV."""
    mem = memories.get(camera)
    if mem is None or seq not in mem.metas:
        raise KeyError(f"chunk seq {seq} of camera {camera!r} is not in memory")
    history = mem.history(before=seq, last=parts.history_window)
    plan = plan_prefill_context(history, parts.prefix.n_tokens, parts.cfg.prev_chunks,
                                parts.cfg.max_headers)
    meta = mem.metas[seq]
    return [*parts.context_segments(camera, plan),
            chunk_segment(meta, parts.store.get((camera, seq), "fine"))]


def _check(questions: list[str]) -> None:
    for i, q in enumerate(questions):
        if not q or not q.strip():
            raise ValueError(f"questions[{i}] must not be empty, got {q!r}")


def yes_probabilities_batch(parts: QueryParts, memories: Mapping[str, CameraMemory],
                            requests: list[tuple[str, int, list[str]]]) -> list[list[float]]:
    """requests: (camera, seq, questions) -> P(Yes) per question, all in one forward."""
    runner, dev = parts.runner, parts.runner.device
    rows_k, rows_v, ids, starts = [], [], [], []
    for camera, seq, questions in requests:
        _check(questions)
        ctx = gather(chunk_context_segments(parts, memories, camera, seq), runner.rope,
                     "contiguous")
        for q in questions:
            rows_k.append(ctx.k)
            rows_v.append(ctx.v)
            ids.append(list(parts.prompt.question_ids(q)))
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
    yes = probs[:, torch.tensor(list(parts.prompt.yes_ids), device=dev)].sum(-1).tolist()
    result, i = [], 0
    for _c, _s, questions in requests:
        result.append(yes[i:i + len(questions)])
        i += len(questions)
    return result


def yes_probabilities(parts: QueryParts, memories: Mapping[str, CameraMemory], camera: str,
                      seq: int, questions: list[str]) -> list[float]:
    return yes_probabilities_batch(parts, memories, [(camera, seq, questions)])[0]
