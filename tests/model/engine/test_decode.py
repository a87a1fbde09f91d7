"""Bi-granularity decoding, relevance, standing questions and recovery (real tiny model).

References: transformers' Qwen2 twin over the dense layout, and a coarse context pooled
by hand in the test from the pooling definition, run by the twin through a DynamicCache.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close
from transformers import DynamicCache

from model.engine import decode, relevance
from model.engine.engine import Engine, EngineConfig
from model.engine.records import ChunkMeta, plan_prefill_context
from model.engine.store import ChunkUnavailable, InMemoryChunkStore
from model.intervals import parse_intervals
from model.layers import apply_rope, rope_cos_sin
from tests.model.engine.reference import chunk_frames, dense_reference, feed

QUESTION = "When did a person enter the scene?"
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def streamed(tiny_model):
    """Three chunks of one camera with every previous chunk dense (so the stored KV equals
    the dense forward's, which test_prefill proves)."""
    eng = Engine(tiny_model, EngineConfig(prev_chunks=None, max_headers=None, top_k=1,
                                          max_new_tokens=6))
    chunks = chunk_frames(3, seed=1)
    feed(eng, "cam", chunks)
    return eng, chunks


@torch.no_grad()
def twin_greedy(twin, emb, n_new, stop_id):
    out = twin(inputs_embeds=emb[None], use_cache=True)
    cache, logits, ids = out.past_key_values, out.logits[0, -1], []
    while len(ids) < n_new:
        nxt = int(logits.argmax())
        if nxt == stop_id:
            break
        ids.append(nxt)
        out = twin(input_ids=torch.tensor([[nxt]]), past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[0, -1]
    return ids


@pytest.mark.slow
def test_decoding_with_every_chunk_dense_equals_greedy_over_the_full_context(
        streamed, tiny_model, twin):
    eng, chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, records = eng.query_parts(), eng.camera_records("cam")
    plan = decode.plan_question(parts, records, q_ids, None, {0: 10.0, 1: 10.0, 2: 10.0})
    plan = decode.select_chunks("cam", [records.memory.metas[s] for s in range(3)],
                                plan.scores, 3, 10**6, 0, 4)
    assert plan.chunks == ((0, "dense"), (1, "dense"), (2, "dense"))
    ids, first = decode.greedy(parts, decode.assemble(parts, records.memory, plan), q_ids, 6)
    logits, _k, _v, dense_ids = dense_reference(tiny_model, twin, chunks, QUESTION)
    assert_close(first, logits[-1], **TOL)
    assert ids == twin_answer(tiny_model, twin, chunks, dense_ids, 6)


def twin_answer(model, twin, chunks, dense_ids, n: int) -> list[int]:
    """transformers' greedy tokens over the released dense layout of `chunks` + QUESTION."""
    times = [t for _f, ts in chunks for t in ts]
    _ids, vis = model.prompt.build_dense(times, QUESTION)
    emb = model.model.embed_tokens(torch.tensor(dense_ids)).clone()
    feats = model.encode_video(np.concatenate([f for f, _ in chunks]))
    emb[torch.tensor(vis)] = feats.reshape(-1, emb.shape[-1])
    return twin_greedy(twin, emb, n, model.prompt.im_end_id)


def pooled_by_hand(meta: ChunkMeta, fine, r):
    """Coarse K or V by definition: each group's header verbatim, then each run of r
    consecutive vision tokens replaced by its mean."""
    parts, pos = [], 0
    for h in meta.header_lens:
        parts.append(fine[:, :, pos:pos + h])
        vis = fine[:, :, pos + h:pos + h + meta.slots]
        parts += [vis[:, :, i:i + r].mean(dim=2, keepdim=True) for i in range(0, meta.slots, r)]
        pos += h + meta.slots
    return torch.cat(parts, dim=2)


@torch.no_grad()
def test_coarse_chunks_decode_like_a_context_pooled_by_hand(streamed, tiny_model, twin):
    eng, _chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, records = eng.query_parts(), eng.camera_records("cam")
    plan = decode.plan_question(parts, records, q_ids, None, {1: 100.0})  # chunk 1 dense
    assert plan.chunks == ((0, "coarse"), (1, "dense"), (2, "coarse"))
    _ids, first = decode.greedy(parts, decode.assemble(parts, records.memory, plan), q_ids, 0)

    t = tiny_model.config.text
    ks, vs = [eng.prefix.k], [eng.prefix.v]
    for seq, how in plan.chunks:
        fine, meta = eng.store.get(("cam", seq), "fine"), eng.memories["cam"].metas[seq]
        ks.append(fine["k"] if how == "dense" else pooled_by_hand(meta, fine["k"], 4))
        vs.append(fine["v"] if how == "dense" else pooled_by_hand(meta, fine["v"], 4))
    k, v = torch.cat(ks, dim=2), torch.cat(vs, dim=2)
    n = k.shape[2]
    cos, sin = rope_cos_sin(torch.arange(n), t.head_dim, t.rope_theta, k.dtype)
    cache = DynamicCache()
    for layer in range(t.num_hidden_layers):
        cache.update(apply_rope(k[layer][None], cos, sin), v[layer][None], layer)
    out = twin(input_ids=torch.tensor([q_ids]), past_key_values=cache,
               position_ids=torch.arange(n, n + len(q_ids))[None], use_cache=True)
    assert_close(first, out.logits[0, -1], **TOL)
    assert n == eng.prefix.n_tokens + plan.n_tokens


def test_chunk_whose_summary_key_matches_the_question_ranks_first(streamed):
    eng, _chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    qvec = relevance.question_vectors(eng.runner, eng.prefix, q_ids)  # [L, Hkv, D]
    store = InMemoryChunkStore()
    for seq in range(3):
        for form in ("fine", "coarse"):
            store.put(("cam", seq), form, eng.store.get(("cam", seq), form),
                      eng.store.meta(("cam", seq)))
    coarse = store.get(("cam", 0), "coarse")
    coarse["summary"] = qvec * 5.0
    store.put(("cam", 0), "coarse", coarse, {})
    probe = Engine(eng.model, eng.cfg, store)
    probe.recover("cam")
    parts, records = probe.query_parts(), probe.camera_records("cam")
    plan = decode.plan_question(parts, records, q_ids, None, None)
    assert max(plan.scores, key=plan.scores.get) == 0
    assert plan.chunks[0] == (0, "dense") and sum(h == "dense" for _s, h in plan.chunks) == 1
    boosted = decode.plan_question(parts, records, q_ids, None, {2: 1e6})
    assert (2, "dense") in boosted.chunks and boosted.scores[2] > boosted.scores[0]


def _meta(seq: int) -> ChunkMeta:
    return ChunkMeta(camera="c", seq=seq, group_times=(0.0, 1.0, 2.0, 3.0),
                     header_lens=(6, 6, 6, 6), slots=144, wall_origin=0.0, offset=0)


def test_budget_drops_lowest_scoring_coarse_chunks_and_keeps_temporal_order():
    metas = [_meta(s) for s in range(10)]  # 600 tokens dense, 168 coarse at r = 4
    scores = {s: float(s % 5) + s / 100 for s in range(10)}  # best: 9, 4, 8, 3, 7, ...
    plan = decode.select_chunks("c", metas, scores, top_k=2, budget=100 + 2 * 600 + 3 * 168,
                                fixed_tokens=100, ratio=4)
    assert [s for s, h in plan.chunks if h == "dense"] == [4, 9]
    assert [s for s, h in plan.chunks if h == "coarse"] == [3, 7, 8]
    assert [s for s, _ in plan.chunks] == sorted(s for s, _ in plan.chunks)
    assert set(plan.dropped) == {0, 1, 2, 5, 6}
    assert plan.n_tokens == 2 * 600 + 3 * 168
    tight = decode.select_chunks("c", metas, scores, top_k=2, budget=700, fixed_tokens=100,
                                 ratio=4)
    assert tight.n_tokens + 100 <= 700 and tight.chunks == ((9, "dense"),)


@pytest.mark.slow
def test_standing_questions_in_one_batch_equal_each_alone_and_the_dense_reference(
        streamed, tiny_model, twin):
    eng, chunks = streamed
    qs = ["Is anyone fighting or lying on the floor? Answer yes or no.", "Is there a car?"]
    batch = eng.standing("cam", 2, qs)
    alone = [eng.standing("cam", 2, [q])[0] for q in qs]
    assert batch == pytest.approx(alone, rel=1e-5)
    for q, p in zip(qs, batch, strict=True):
        logits = dense_reference(tiny_model, twin, chunks, q)[0][-1]
        want = torch.softmax(logits, -1)[tiny_model.prompt.yes_ids].sum().item()
        assert p == pytest.approx(want, rel=1e-5)
        assert 0.0 < p < 1.0


def test_ask_returns_text_intervals_and_chunks_used_within_top_k(streamed):
    eng, _chunks = streamed
    res = eng.ask("cam", QUESTION, seq_range=(1, 2))
    assert {s for s, _h in res.chunks_used} <= {1, 2} and set(res.scores) == {1, 2}
    assert sum(h == "dense" for _s, h in res.chunks_used) == 1  # top_k = 1
    assert res.intervals == parse_intervals(res.text)
    assert len(res.token_ids) <= 6
    with pytest.raises(ValueError, match="question"):
        eng.ask("cam", "  ")


@pytest.mark.slow
def test_recovered_engine_continues_the_stream_like_the_original(tiny_model):
    cfg = EngineConfig(prev_chunks=1, max_headers=3)
    chunks = chunk_frames(4, seed=1)
    store = InMemoryChunkStore()
    first = Engine(tiny_model, cfg, store)
    feed(first, "cam", chunks[:3])
    restarted = Engine(tiny_model, cfg, store)  # fresh bookkeeping, headers from coarse KV
    assert restarted.recover("cam") == 3
    with pytest.raises(ValueError, match="seq 2"):
        restarted.submit("cam", 2, *chunks[2], wall_origin=0.0)
    with pytest.raises(ValueError, match="coarse_ratio 4"):
        Engine(tiny_model, EngineConfig(coarse_ratio=8), store).recover("cam")
    reference = Engine(tiny_model, cfg)
    feed(reference, "cam", chunks)
    feed(restarted, "cam", chunks[3:], first_seq=3)
    got, want = store.get(("cam", 3), "fine"), reference.store.get(("cam", 3), "fine")
    assert_close(got["k"], want["k"], **TOL)
    assert_close(got["v"], want["v"], **TOL)


class FineDroppedStore(InMemoryChunkStore):
    """A store whose retention has dropped the fine KV of some chunks (coarse kept), as the
    tiered store does after `fine_ttl`; everything else is the real in-memory store."""

    def __init__(self, dropped: set[tuple[str, int]]) -> None:
        super().__init__()
        self.dropped = dropped

    def get(self, key, form):
        if form == "fine" and key in self.dropped:
            raise ChunkUnavailable(key, form, "dropped by retention")
        return super().get(key, form)

    def has(self, key, form):
        return not (form == "fine" and key in self.dropped) and super().has(key, form)


def test_chunks_whose_fine_kv_was_dropped_are_decoded_coarse_and_prefill_goes_on(tiny_model):
    store = FineDroppedStore(set())
    eng = Engine(tiny_model, EngineConfig(prev_chunks=2, max_headers=4, top_k=2), store)
    chunks = chunk_frames(4, seed=1)
    feed(eng, "cam", chunks[:3])
    store.dropped |= {("cam", 1)}
    eng.mark_important("cam", 2)
    assert ("cam", 2) in store.important
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, records = eng.query_parts(), eng.camera_records("cam")
    plan = decode.plan_question(parts, records, q_ids, None, {1: 100.0})
    assert (1, "coarse") in plan.chunks  # best score, but only its coarse form exists
    assert sum(h == "dense" for _s, h in plan.chunks) == 2
    with pytest.raises(ChunkUnavailable):
        eng.standing("cam", 1, ["Is anyone there?"])
    store.dropped |= {("cam", 0)}  # dropped after planning: the answer uses it coarse
    used: list = []
    decode.assemble(parts, records.memory, plan, used)
    assert dict(used)[0] == "coarse" and dict(used)[1] == "coarse"
    eng.submit("cam", 3, *chunks[3], wall_origin=0.0)  # chunk 1 is in chunk 3's window
    (result,) = eng.step()
    metas = eng.memories["cam"].metas
    planned = plan_prefill_context([metas[s] for s in range(3)], eng.prefix.n_tokens, 2, 4)
    assert planned.dense_seqs == (1, 2)
    assert result.context_tokens == planned.n_tokens - metas[1].n_tokens + \
        metas[1].n_coarse_tokens(4)  # chunk 1 attended to in its coarse form
    assert store.has(("cam", 3), "fine")


def test_standing_questions_of_two_cameras_in_one_batch_equal_each_camera_alone(tiny_model):
    """Different context lengths (p = None vs a short stream) are padded in one forward."""
    eng = Engine(tiny_model, EngineConfig(prev_chunks=None, max_headers=None))
    chunks = chunk_frames(3, seed=1)
    feed(eng, "a", chunks)
    feed(eng, "b", chunks[:1])
    qs_a, qs_b = ["Is anyone there?", "Is a car parked? Answer yes or no."], ["Any fire?"]
    batch = eng.standing_batch([("a", 2, qs_a), ("b", 0, qs_b), ("a", 1, [])])
    assert batch[0] == pytest.approx(eng.standing("a", 2, qs_a), rel=1e-5)
    assert batch[1] == pytest.approx(eng.standing("b", 0, qs_b), rel=1e-5)
    assert batch[2] == []


class LostChunkStore(InMemoryChunkStore):
    """A store that lost every form of some chunks (a corrupt file), as a disk store can."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[tuple[str, int]] = set()

    def get(self, key, form):
        if key in self.lost:
            raise ChunkUnavailable(key, form, "lost: corrupt file")
        return super().get(key, form)


def test_a_lost_window_chunk_is_skipped_without_failing_other_cameras_in_the_step(tiny_model):
    store = LostChunkStore()
    eng = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=4), store)
    chunks = chunk_frames(3, seed=1)
    feed(eng, "a", chunks[:2])
    feed(eng, "b", chunks[:2])
    store.lost.add(("a", 1))
    eng.submit("a", 2, *chunks[2], wall_origin=0.0)
    eng.submit("b", 2, *chunks[2], wall_origin=0.0)
    results = {r.camera: r for r in eng.step()}
    assert set(results) == {"a", "b"}
    assert results["a"].context_tokens < results["b"].context_tokens
    assert eng.stats()["context_chunks_missing"] == 1


def test_static_decode_steps_equal_the_eager_decode_and_the_twin(streamed, tiny_model, twin):
    """The CUDA-graph decode step (model.engine.graphs), run eagerly here (capture needs a
    GPU; its values do not): fixed-capacity buffer, slot written by index, the slots after
    it masked. Its tokens equal the plain decode loop's and transformers' greedy ones, and
    the same DecodeGraph serves a second question after a first one left stale slots."""
    from model.engine.graphs import DecodeGraph, attend_static

    eng, chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, memory = eng.query_parts(), eng.memories["cam"]
    plan = decode.select_chunks("cam", [memory.metas[s] for s in range(3)], {}, 3, 10**6, 0, 4)
    ctx = decode.assemble(parts, memory, plan)
    graph = DecodeGraph(eng.runner, ctx.n_tokens + len(q_ids) + 40, capture=False)
    assert not graph.capture
    for _ in range(2):  # the second run finds the first one's slots in the buffer
        got, first = decode.greedy(parts, ctx, q_ids, 12, graph=graph)
        want, want_first = decode.greedy(parts, ctx, q_ids, 12)
        assert got == want and len(got) >= 3  # several steps really ran
        assert_close(first, want_first, **TOL)
    _logits, _k, _v, dense_ids = dense_reference(tiny_model, twin, chunks, QUESTION)
    assert got == twin_answer(tiny_model, twin, chunks, dense_ids, 12)
    # one query token per head over grouped KV heads equals SDPA with expanded heads
    q, k, v = torch.randn(1, 8, 1, 16), torch.randn(1, 2, 10, 16), torch.randn(1, 2, 10, 16)
    seen = (torch.arange(10) <= 6)[None, None, None]
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, 1)[:, :, :7], v.repeat_interleave(4, 1)[:, :, :7])
    assert_close(attend_static(q, k, v, seen), ref, **TOL)
    graph.buf.length = graph.capacity
    with pytest.raises(ValueError, match="decode buffer full"):
        graph.step(1, 0)


def test_one_token_attention_split_into_key_blocks_equals_the_plain_product():
    """attend_static's value product split along the keys (SPLIT blocks, summed) equals SDPA
    over expanded KV heads, with the masked tail of a fixed-capacity buffer ignored."""
    from model.engine.graphs import SPLIT, attend_static

    g = torch.Generator().manual_seed(11)
    s = 2 * SPLIT
    q = torch.randn(1, 8, 1, 16, generator=g)
    k, v = torch.randn(1, 2, s, 16, generator=g), torch.randn(1, 2, s, 16, generator=g)
    seen = (torch.arange(s) <= SPLIT + 37)[None, None, None]
    n = SPLIT + 38
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, 1)[:, :, :n], v.repeat_interleave(4, 1)[:, :, :n])
    assert_close(attend_static(q, k, v, seen), ref, **TOL)


def test_decode_steps_through_the_one_token_blocks_equal_the_module_decode(streamed):
    """With fused blocks, a DecodeGraph step runs the one-token block set (on CUDA its own
    torch.compile with matrix-vector kernels; here the same functions eagerly, since
    inductor's GPU kernels need a GPU) and the fused greedy head: same tokens as the
    module-by-module decode."""
    from dataclasses import replace

    from model.engine import blocks
    from model.engine.graphs import DecodeGraph
    from model.engine.runner import Runner

    eng, _chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, memory = eng.query_parts(), eng.memories["cam"]
    plan = decode.select_chunks("cam", [memory.metas[s] for s in range(3)], {}, 3, 10**6, 0, 4)
    ctx = decode.assemble(parts, memory, plan)
    want, _ = decode.greedy(parts, ctx, q_ids, 12)
    fused = Runner(eng.model)
    assert fused.use_blocks(compile=False)
    calls = []

    def head(*args):
        calls.append(1)
        return blocks.greedy_head(*args)

    fused._decode_blocks = (blocks.pre_attention, blocks.post_attention, head)
    graph = DecodeGraph(fused, ctx.n_tokens + len(q_ids) + 40, capture=False)
    got, _ = decode.greedy(replace(parts, runner=fused), ctx, q_ids, 12, graph=graph)
    assert got == want and len(calls) == len(got) - 1 >= 2


def test_question_steps_replayed_at_fixed_widths_equal_the_eager_forward(streamed):
    """The multi-token step of a DecodeGraph (on CUDA captured per width and replayed;
    here run eagerly): the relevance queries of a question over the prefix equal those of
    the eager forward; a question longer than the widest step falls back to the eager
    forward with the same tokens; bad sizes are refused and change nothing."""
    from model.engine import relevance
    from model.engine.graphs import WIDTHS, DecodeGraph

    eng, _chunks = streamed
    q_ids = eng.prompt.question_ids(QUESTION)
    graph = DecodeGraph(eng.runner, 512, capture=False)
    want = relevance.question_vectors(eng.runner, eng.prefix, q_ids)
    got = relevance.question_vectors(eng.runner, eng.prefix, q_ids, graph)
    assert_close(got, want, **TOL)
    assert graph.buf.length == eng.prefix.n_tokens + len(q_ids)
    long_ids = (q_ids * (WIDTHS[-1] // len(q_ids) + 2))[:WIDTHS[-1] + 3]
    parts, memory = eng.query_parts(), eng.memories["cam"]
    plan = decode.select_chunks("cam", [memory.metas[s] for s in range(2)], {}, 2, 10**6, 0, 4)
    ctx = decode.assemble(parts, memory, plan)
    big = DecodeGraph(eng.runner, ctx.n_tokens + len(long_ids) + 20, capture=False)
    assert decode.greedy(parts, ctx, long_ids, 6, graph=big)[0] == decode.greedy(
        parts, ctx, long_ids, 6)[0]
    length = graph.buf.length
    with pytest.raises(ValueError, match="do not fit a captured step"):
        graph.prefill(long_ids, 0)
    with pytest.raises(ValueError, match="do not fit capacity"):
        DecodeGraph(eng.runner, 8, capture=False).prefill(q_ids, 0)
    assert graph.buf.length == length
