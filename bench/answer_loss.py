"""What an answer loses when a chunk's KV is no longer kept as it was prefilled.

A part, not the service: the tiny random checkpoint (no real weights here) through the
service's own `Engine` over the real `TieredChunkStore` with the service's disk codec
(`pipeline.memory.videoxl2.disk_codec` at the config defaults), on vtest.avi at 1 fps.
The same questions are asked four times over the same chunks:

- `dense`: every chunk's fine KV in memory (the reference);
- `coarse_r4`: the fine KV dropped (retention), the coarse form at r = 4 in memory;
- `disk_fp8`: after a restart, everything read back from the disk: fine KV in FP8 for the
  important chunks, the coarse form at r = 16 in FP8 for the others;
- `disk_coarse_r16`: after a restart with the fine KV dropped: the coarse form from disk.

For each it reports the share of answers identical to the reference, the share of answer
tokens that agree position by position, the KL divergence of the first answer token's
distribution from the reference's (the assembled context through `model.engine.decode`'s
own `plan_question`, `assemble` and `greedy`, the steps `Engine.ask` runs), and the
largest change of a standing question's P("Yes") per chunk (what anomaly alerts read).

    PYTHONPATH=. python bench/answer_loss.py [--chunks 6] [--questions 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "When did a person enter the scene?", "How many people walked past?",
    "What happened at the door, and when?", "Did anyone fall down?",
    "Describe the people near the left wall.", "When was the hallway empty?",
    "Was anyone carrying a bag?", "What changed in the last minute?",
]
STANDING = ["Is anyone fighting or lying on the floor? Answer yes or no.",
            "Is a person at the door? Answer yes or no."]
FRAMES = 8  # two groups of 4 frames per chunk keep the CPU prefill short


def frames_1fps(path: Path, n: int):
    import av
    import numpy as np

    out = []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i % 10 == 0:  # vtest.avi is 10 fps
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return np.stack(out)


def build(model, data: Path, codec, now):
    from model.engine.engine import Engine, EngineConfig
    from model.kv.policy import TierConfig
    from model.kv.tiered import TieredChunkStore

    cfg = TierConfig(gpu_bytes=1 << 30, host_bytes=1 << 30, disk_bytes=1 << 32,
                     prefill_chunks=1, gpu_coarse_chunks=1, fine_ttl_s=3600,
                     coarse_ttl_s=7200, persist_fine="important")
    store = TieredChunkStore(cfg, data, clock=lambda: now[0], codec=codec)
    return Engine(model, EngineConfig(prev_chunks=1, top_k=2, max_new_tokens=16), store), store


def first_logprobs(engine, camera: str, question: str) -> torch.Tensor:
    """log-softmax of the first answer token, over the context `Engine.ask` assembles."""
    from model.engine import decode

    parts, records = engine.query_parts(), engine.camera_records(camera)
    q_ids = list(parts.prompt.question_ids(question))
    plan = decode.plan_question(parts, records, q_ids, None, None)
    with torch.inference_mode():
        ctx = decode.assemble(parts, records.memory, plan, [])
        _, first = decode.greedy(parts, ctx, q_ids, 1)
    return torch.log_softmax(first.float(), -1)


def observe(engine, store, qs: list[str], chunks: int) -> dict:
    # Standing questions read a chunk's own fine KV (asked as it is prefilled): here over
    # the chunks that still have it.
    return {"answers": [engine.ask("cam", q) for q in qs],
            "first": [first_logprobs(engine, "cam", q) for q in qs],
            "standing": {s: engine.standing("cam", s, STANDING) for s in range(chunks)
                         if store.has(("cam", s), "fine")}}


def compare(reference: dict, observed: dict) -> dict:
    ref, got = reference["answers"], observed["answers"]
    same = sum(a.text == b.text for a, b in zip(ref, got, strict=True))
    agree = total = 0
    for a, b in zip(ref, got, strict=True):
        n = max(len(a.token_ids), len(b.token_ids))
        agree += sum(x == y for x, y in zip(a.token_ids, b.token_ids, strict=False))
        total += n
    kl = [float((p.exp() * (p - q)).sum()) for p, q in
          zip(reference["first"], observed["first"], strict=True)]
    top1 = sum(int(p.argmax()) == int(q.argmax()) for p, q in
               zip(reference["first"], observed["first"], strict=True))
    both = sorted(set(reference["standing"]) & set(observed["standing"]))
    yes = max((abs(a - b) for s in both for a, b in
               zip(reference["standing"][s], observed["standing"][s], strict=True)),
              default=None)
    return {"same_answer": round(same / len(ref), 3),
            "tokens_agree": round(agree / total, 3) if total else None,
            "first_token_same": round(top1 / len(ref), 3),
            "first_token_kl_max": round(max(kl), 6),
            "first_token_kl_mean": round(sum(kl) / len(kl), 6),
            "standing_chunks": len(both),
            "standing_yes_max_change": None if yes is None else round(yes, 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=6)
    ap.add_argument("--questions", type=int, default=len(QUESTIONS))
    ap.add_argument("--clip", type=Path, default=ROOT.parent / "shared/data/vtest.avi")
    ap.add_argument("--quick", action="store_true", help="3 chunks, 3 questions (CI smoke)")
    args = ap.parse_args()
    if args.quick:
        args.chunks, args.questions = 3, 3
    from model import load_model
    from model.tiny import make_tiny_checkpoint
    from pipeline.config import XLWatchConfig
    from pipeline.memory.videoxl2 import disk_codec

    started = time.monotonic()
    torch.manual_seed(0)
    cfg = XLWatchConfig()
    codec = disk_codec(cfg)
    qs = QUESTIONS[:args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(make_tiny_checkpoint(Path(tmp) / "ckpt", seed=0))
        frames = frames_1fps(args.clip, args.chunks * FRAMES)
        now = [1000.0]
        engine, store = build(model, Path(tmp) / "kv", codec, now)
        for seq in range(args.chunks):
            times = [float(t) for t in range(FRAMES * seq, FRAMES * (seq + 1), 4)]
            engine.submit("cam", seq, frames[FRAMES * seq:FRAMES * (seq + 1)], times, 1e9)
        engine.run_until_idle()
        important = set(range(0, args.chunks, 3))  # a third of the chunks had CV events
        for seq in important:
            store.mark_important(("cam", seq))
        dense = observe(engine, store, qs, args.chunks)
        assert store.flush(60)
        results = {}
        # A restart: everything comes back from the disk forms.
        engine2, store2 = build(model, Path(tmp) / "kv", codec, now)
        engine2.recover("cam")
        results["disk_fp8"] = compare(dense, observe(engine2, store2, qs, args.chunks))
        # Retention drops the plain chunks' fine KV: the coarse form in memory answers.
        now[0] += 3600
        store.sweep()
        results["coarse_r4"] = compare(dense, observe(engine, store, qs, args.chunks))
        store2.sweep()
        results["disk_coarse_r16"] = compare(dense, observe(engine2, store2, qs, args.chunks))
        files = {cf.form: cf.nbytes for cf in store2.disk.scan()}
    print(json.dumps({
        "bench": "answer_loss", "chunks": args.chunks, "questions": len(qs),
        "important_chunks": len(important), "disk_codec": codec.name,
        "disk_coarse_ratio": cfg.memory.disk_coarse_ratio, "disk_dtype": cfg.memory.disk_dtype,
        **results, "last_file_bytes": files,
        "device": f"cpu ({platform.processor() or platform.machine()}), tiny random model",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python bench/answer_loss.py " + " ".join(sys.argv[1:]),
        "wall_s": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
