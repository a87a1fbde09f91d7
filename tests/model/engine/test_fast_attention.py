"""The CUDA attention path of the Runner (lower-right causal bias when the contexts have
no padding, expanded KV heads otherwise) computes what the masked reference path does.

Real tiny model, fp32, on the CPU with the fast path forced on (its speed needs a GPU;
its values do not): a batch of two contexts of different lengths (padding inside the
buffer), a single context (no padding) and a one-token decode step.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from model.engine.runner import KVBuffer, Runner


def _run(runner: Runner, lens: list[int], t: int, fast: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    d = runner.dims
    ks = [torch.randn(d.n_layers, d.n_kv_heads, n, d.head_dim, generator=g) for n in lens]
    vs = [torch.randn(d.n_layers, d.n_kv_heads, n, d.head_dim, generator=g) for n in lens]
    emb = torch.randn(len(lens), t, d.hidden, generator=g)
    pos = torch.stack([n + torch.arange(t) for n in lens])
    runner.fast_attention = fast
    buf = KVBuffer.from_contexts(ks, vs, extra=t)
    out = runner.forward(emb, pos, buf, all_logits=True)
    return out, buf


@pytest.mark.parametrize(("lens", "t"), [([7, 19], 5), ([23], 9), ([23], 1), ([4, 30], 1)])
def test_fast_attention_equals_masked_reference(tiny_model, lens, t):
    runner = Runner(tiny_model)
    ref, ref_buf = _run(runner, lens, t, fast=False, seed=len(lens) * 100 + t)
    got, got_buf = _run(runner, lens, t, fast=True, seed=len(lens) * 100 + t)
    for i, n in enumerate(lens):  # logits of padded new tokens are not compared
        assert_close(got.logits[i], ref.logits[i], rtol=1e-4, atol=1e-4)
        assert_close(got.k[:, i], ref.k[:, i], rtol=1e-5, atol=1e-5)
        assert_close(got_buf.k[:, i, :, :n], ref_buf.k[:, i, :, :n])
    assert not torch.isnan(got.logits).any()


@pytest.mark.parametrize(("lens", "t"), [([7, 19], 5), ([23], 1)])
def test_fused_blocks_equal_the_module_by_module_layers(tiny_model, lens, t):
    """The block functions (eager here; torch.compile'd on CUDA) compute what the
    model's own modules compute, for prefill and for one decode step."""
    ref, ref_buf = _run(Runner(tiny_model), lens, t, fast=False, seed=7 + t)
    runner = Runner(tiny_model)
    assert runner.use_blocks(compile=False)
    got, got_buf = _run(runner, lens, t, fast=False, seed=7 + t)
    assert_close(got.logits, ref.logits, rtol=1e-5, atol=1e-5)
    assert_close(got.k, ref.k, rtol=1e-5, atol=1e-5)
    assert_close(got_buf.k, ref_buf.k, rtol=1e-5, atol=1e-5)
    assert got_buf.length == ref_buf.length and bool((got_buf.valid == ref_buf.valid).all())


def test_fused_blocks_run_fp8_layers_as_the_fp8_modules_do(tiny_model):
    """With FP8 layers (simulated e4m3 on the CPU) the blocks fuse the FP8 weights and
    scales and compute what the FP8 modules compute one by one."""
    import copy

    from model.fp8 import apply_fp8

    model = copy.deepcopy(tiny_model)
    apply_fp8(model, ("llm",))
    ref, _ = _run(Runner(model), [7, 19], 5, fast=False, seed=3)
    runner = Runner(model)
    assert runner.use_blocks(compile=False)
    got, _ = _run(runner, [7, 19], 5, fast=False, seed=3)
    assert_close(got.logits, ref.logits, rtol=1e-5, atol=1e-5)
    plain, _ = _run(Runner(tiny_model), [7, 19], 5, fast=False, seed=3)
    assert not torch.allclose(got.logits, plain.logits, atol=1e-6)  # FP8 really ran


def test_fused_blocks_decline_a_mix_of_fp8_and_plain_layers(tiny_model):
    import copy

    from model.fp8 import FP8Linear

    model = copy.deepcopy(tiny_model)
    attn = model.model.layers[0].self_attn
    attn.q_proj = FP8Linear(attn.q_proj)
    assert not Runner(model).use_blocks(compile=False)


def test_fusing_shares_memory_and_keeps_the_state_dict(tiny_model):
    """Fused q/k/v and gate/up weights are one tensor each; the modules' own weights become
    views of it (no memory doubled) and the state dict keeps its keys and values."""
    import copy

    model = copy.deepcopy(tiny_model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner = Runner(model)
    assert runner.use_blocks(compile=False)
    assert runner.use_blocks(compile=False)  # twice: the cached fusion is reused
    layer = model.model.layers[0]
    fused = runner._blocks[2][0]["wqkv"]
    assert layer.self_attn.q_proj.weight.data_ptr() == fused.data_ptr()
    assert layer.self_attn.k_proj.weight.untyped_storage().data_ptr() == \
        fused.untyped_storage().data_ptr()
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


@pytest.mark.parametrize("fast", [False, True])
def test_arena_buffers_reused_across_steps_compute_what_fresh_buffers_do(tiny_model, fast):
    """PrefillArena hands out views of one storage: a second, smaller batch finds the first
    one's K/V in the slots past its contexts; they are never attended (dense contexts are
    sliced, padded ones masked), so its output equals a fresh buffer's."""
    from model.engine.runner import PrefillArena

    runner = Runner(tiny_model)
    runner.fast_attention = fast
    d = runner.dims
    g = torch.Generator().manual_seed(5)
    arena = PrefillArena()

    def ctx(n):
        return (torch.randn(d.n_layers, d.n_kv_heads, n, d.head_dim, generator=g),
                torch.randn(d.n_layers, d.n_kv_heads, n, d.head_dim, generator=g))

    big = [ctx(40), ctx(33), ctx(25)]
    arena.buffer([c[0] for c in big], [c[1] for c in big], extra=6)
    storage = arena.k
    for lens in ([11, 20], [17]):
        cs = [ctx(n) for n in lens]
        emb = torch.randn(len(lens), 4, d.hidden, generator=g)
        pos = torch.stack([n + torch.arange(4) for n in lens])
        got = runner.forward(emb, pos, arena.buffer([c[0] for c in cs], [c[1] for c in cs], 4),
                             all_logits=True)
        want = runner.forward(emb, pos, KVBuffer.from_contexts([c[0] for c in cs],
                                                               [c[1] for c in cs], 4),
                              all_logits=True)
        assert arena.k is storage  # reused, not reallocated
        assert_close(got.logits, want.logits, rtol=1e-5, atol=1e-5)
        assert_close(got.k, want.k)


@pytest.mark.parametrize(("window", "history"), [(1, True), (3, True), (1, False)])
def test_packed_rows_attention_equals_the_masked_reference(tiny_model, window, history):
    """A prefill step's fast paths give the chunk KV of the masked path. Packed (each
    row's real queries and valid keys back to back, one variable-length call; on the CPU
    attended sequence by sequence): two cameras whose contexts differ in length (camera a
    has history) and, with window 3, same-step chunks of one camera in each other's
    context. Dense (two fresh cameras: one start slot for all rows, one flash call)."""
    from model.engine.engine import Engine, EngineConfig
    from model.engine.layout import StepLayout
    from tests.model.engine.reference import chunk_frames, feed

    frames = chunk_frames(5, seed=4)
    stores, dense_steps = [], []
    for fast in (False, True):
        eng = Engine(tiny_model, EngineConfig(prev_chunks=1, max_headers=2,
                                              camera_window=window))
        eng.runner.fast_attention = fast
        if history:
            feed(eng, "a", frames[:1])  # camera a has history: contexts of the batch differ
        feed(eng, "a", frames[1:4], first_seq=int(history), step=False)
        feed(eng, "b", frames[4:], step=False)
        seen = []
        build = StepLayout.build
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(StepLayout, "build", staticmethod(
                lambda *a, seen=seen, build=build: seen.append(build(*a)) or seen[-1]))
            eng.run_until_idle()
        dense_steps.append(sum(lay.same_start and len(lay.rows) > 1 for lay in seen))
        stores.append((eng.store, [("a", s) for s in range(int(history), 3 + int(history))]
                       + [("b", 0)]))
    assert dense_steps[1] == (0 if history else 1)  # the dense path ran where it applies
    for key in stores[0][1]:
        want, got = stores[0][0].get(key, "fine"), stores[1][0].get(key, "fine")
        assert_close(got["k"], want["k"], rtol=1e-5, atol=1e-5)
        assert_close(got["v"], want["v"], rtol=1e-5, atol=1e-5)
