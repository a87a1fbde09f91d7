"""Streaming chunked prefill against dense references (real tiny model, fp32, CPU).

The references are transformers' Qwen2 (the `twin` fixture) over the released dense
layout, with the released chunk mask written out explicitly where p is finite.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from model.engine import decode
from model.engine.engine import Engine, EngineConfig
from model.engine.records import ChunkMeta, plan_prefill_context
from model.layers import apply_rope, rope_cos_sin
from tests.model.engine.reference import additive, chunk_frames, dense_reference, feed

QUESTION = "When did a person enter the scene?"
TOL = {"rtol": 1e-5, "atol": 1e-5}


def rotate(model, k, positions):
    t = model.config.text
    cos, sin = rope_cos_sin(positions, t.head_dim, t.rope_theta, k.dtype)
    return apply_rope(k, cos, sin)


def layout(model, chunks):
    """Per dense token: chunk index (-1 prefix, -2 question), header flag, group index."""
    p = model.prompt
    chunk_of, header, group = [-1] * len(p.system_prefix_ids()), [False] * len(
        p.system_prefix_ids()), [-1] * len(p.system_prefix_ids())
    offsets, g = [], 0
    for c, (_f, times) in enumerate(chunks):
        offsets.append(len(chunk_of))
        for t in times:
            n = len(p.header_ids(t))
            chunk_of += [c] * (n + 144)
            header += [True] * n + [False] * 144
            group += [g] * (n + 144)
            g += 1
    return chunk_of, header, group, offsets


def assert_chunks_match_reference(eng, model, keys, values, offsets, n_chunks, cam="cam"):
    for seq in range(n_chunks):
        fine = eng.store.get((cam, seq), "fine")
        n = fine["k"].shape[2]
        pos = torch.arange(offsets[seq], offsets[seq] + n)
        assert eng.memories[cam].metas[seq].offset == offsets[seq]
        for layer in range(len(keys)):
            assert_close(rotate(model, fine["k"][layer], pos), keys[layer][:, pos], **TOL)
            assert_close(fine["v"][layer], values[layer][:, pos], **TOL)


def question_logits(eng, cam="cam"):
    q_ids = eng.prompt.question_ids(QUESTION)
    parts, records = eng.query_parts(), eng.camera_records(cam)
    plan = decode.plan_question(parts, records, q_ids, None, None)
    assert all(how == "dense" for _s, how in plan.chunks)
    _ids, first = decode.greedy(parts, decode.assemble(parts, records.memory, plan), q_ids, 0)
    return first


@pytest.mark.slow
@pytest.mark.parametrize("one_step", [False, True])
def test_unbounded_chunked_prefill_equals_one_dense_causal_forward(tiny_model, twin, one_step):
    """Chunk by chunk, or all three chunks in one step (camera_window)."""
    eng = Engine(tiny_model, EngineConfig(prev_chunks=None, max_headers=None))
    chunks = chunk_frames(3, seed=1)
    feed(eng, "cam", chunks, step=not one_step)
    assert len(eng.run_until_idle()) == (3 if one_step else 0)
    logits, keys, values, _ids = dense_reference(tiny_model, twin, chunks, QUESTION)
    offsets = layout(tiny_model, chunks)[3]
    assert_chunks_match_reference(eng, tiny_model, keys, values, offsets, 3)
    assert_close(question_logits(eng), logits[-1], **TOL)


def released_mask(model, chunks, question_len, p, h):
    """The released chunk mask: prefix, headers (the last h groups before the window, all
    if h is None), the previous p chunks and the own chunk visible, causally; the question
    sees everything before it. One deliberate difference: the released code
    (llava_qwen.py, get_sparse_attention_mask) also lets each header token's ROW see every
    earlier token; a stream cannot afford that (a header would attend to all history), so
    header tokens see their chunk's bounded context like the chunk's vision tokens."""
    chunk_of, header, group, _ = layout(model, chunks)
    n = len(chunk_of) + question_len
    chunk_of = torch.tensor(chunk_of + [-2] * question_len)
    header = torch.tensor(header + [False] * question_len)
    group = torch.tensor(group + [-1] * question_len)
    qc, kc = chunk_of[:, None], chunk_of[None, :]
    window = (kc >= qc - p) & (kc <= qc)
    first_window_group = 4 * (qc - p)
    old_header = header[None, :] & (group[None, :] < first_window_group)
    if h is not None:
        old_header &= group[None, :] >= first_window_group - h
    visible = (kc == -1) | window | old_header | (qc < 0)
    return visible & torch.ones(n, n, dtype=torch.bool).tril()


@pytest.mark.slow
@pytest.mark.parametrize(("p", "h", "window"), [(1, None, 1), (2, None, 1), (1, 3, 1),
                                                (1, 3, 4), (2, None, 3), (1, None, 2)])
def test_finite_window_prefill_equals_released_mask_reference(tiny_model, twin, p, h, window):
    """Original positions reproduce the released mask (whose positions are the dense
    ones); the default contiguous rotation is covered by the unbounded test. With a
    camera window > 1 the four chunks are prefilled in fewer steps, and a chunk's context
    then holds chunks of its own step (dense, and with window 4 > p + 1 headers too)."""
    eng = Engine(tiny_model, EngineConfig(prev_chunks=p, max_headers=h, positions="original",
                                          camera_window=window))
    chunks = chunk_frames(4, seed=1)
    feed(eng, "cam", chunks, step=False)
    eng.run_until_idle()
    assert eng.counters["steps"] == -(-4 // window)
    q_len = len(tiny_model.prompt.question_ids(QUESTION))
    mask = additive(released_mask(tiny_model, chunks, q_len, p, h))
    logits, keys, values, _ = dense_reference(tiny_model, twin, chunks, QUESTION, mask)
    offsets = layout(tiny_model, chunks)[3]
    assert_chunks_match_reference(eng, tiny_model, keys, values, offsets, 4)
    assert_close(question_logits(eng), logits[-1], **TOL)
    unmasked = dense_reference(tiny_model, twin, chunks, QUESTION)[1]
    assert not torch.allclose(unmasked[-1][:, -200:], keys[-1][:, -200:], atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("window", "sizes"), [(1, [2, 2, 1]), (8, [5, 0, 0]), (2, [4, 1, 0])])
def test_two_cameras_prefilled_in_one_step_equal_each_prefilled_alone(tiny_model, window, sizes):
    """Window 1: one chunk per camera per step. Larger windows also put consecutive chunks
    of one camera in the same step (same-step context copied in per layer); every chunk's
    KV still equals that of the camera prefilled alone, chunk by chunk."""
    cfg = EngineConfig(prev_chunks=1, max_headers=2, camera_window=window)
    frames = chunk_frames(5, seed=1)
    a, b = frames[:3], [(f, [t + 100.0 for t in ts]) for f, ts in frames[3:]]
    together = Engine(tiny_model, cfg)
    for i in range(3):
        together.submit("a", i, *a[i], wall_origin=0.0)
        if i < 2:
            together.submit("b", i, *b[i], wall_origin=0.0)
    steps = [together.step() for _ in range(3)]
    assert [len(s) for s in steps] == sizes  # both cameras batched in one step
    alone_a, alone_b = Engine(tiny_model, cfg), Engine(tiny_model, cfg)
    feed(alone_a, "a", a)
    feed(alone_b, "b", b)
    for cam, alone, n in (("a", alone_a, 3), ("b", alone_b, 2)):
        for seq in range(n):
            for form in ("fine", "coarse"):
                got, want = together.store.get((cam, seq), form), alone.store.get((cam, seq), form)
                for name in want:
                    assert_close(got[name], want[name], **TOL)


def _metas(n: int) -> list[ChunkMeta]:
    return [ChunkMeta(camera="c", seq=s, group_times=(0.0, 1.0, 2.0, 3.0),
                      header_lens=(6, 6, 6, 6), slots=144, wall_origin=0.0, offset=0)
            for s in range(n)]


def test_prefill_context_of_chunk_1000_is_as_long_as_that_of_chunk_10():
    """H = 16 so that chunk 10 already has a full header window (7 older chunks, 28
    groups); with the default H = 256 the window is full from chunk 67 on."""
    metas = _metas(1001)
    at = {s: plan_prefill_context(metas[:s], 33, 3, 16) for s in (10, 100, 1000)}
    assert at[1000].n_tokens == at[10].n_tokens == at[100].n_tokens
    assert at[1000].dense_seqs == (997, 998, 999)
    assert len(at[1000].header_groups) == 16
    assert at[1000].header_groups[-1] == (996, 3)
    default = {s: plan_prefill_context(metas[:s], 33, 3, 256).n_tokens for s in (67, 1000)}
    assert default[67] == default[1000]
    unbounded = plan_prefill_context(metas[:1000], 33, None, None)
    assert unbounded.n_tokens > 100 * at[1000].n_tokens


def test_engine_prefill_context_stops_growing_once_the_window_is_full(tiny_model):
    """The BPE header length varies with the digits, so count headers, not tokens."""
    eng = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=4))
    for i, (frames, times) in enumerate(chunk_frames(5, seed=1)):
        eng.submit("cam", i, frames, times, wall_origin=0.0)
    results = eng.run_until_idle()
    metas = eng.memories["cam"].metas
    prefix = len(tiny_model.prompt.system_prefix_ids())
    for r in results[2:]:
        plan = plan_prefill_context([metas[s] for s in range(r.seq)], prefix, 1, 4)
        assert plan.dense_seqs == (r.seq - 1,) and len(plan.header_groups) == 4
        headers = sum(metas[s].header_lens[g] for s, g in plan.header_groups)
        assert r.context_tokens == prefix + headers + metas[r.seq - 1].n_tokens
    assert results[0].context_tokens == prefix
    assert sorted(eng.headers["cam"]) == [2, 3, 4]  # header cache bounded by p and H
    assert max(r.context_tokens for r in results[2:]) < results[1].context_tokens + 40
