"""Attention split along the keys (model/engine/attention.py) equals one masked call.

On the CPU the pieces run in plain tensor code (the flash kernel that runs them on CUDA
is checked against SDPA on the H100 by bench/components.py); what is tested here is the
cut into pieces, the remainder, the causal tail and the log-sum-exp merge.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from model.engine.attention import MIN_PIECE, attention_lse, pieces_for, split_kv_attention


def _reference(q, k, v):
    t, s = q.shape[2], k.shape[2]
    allowed = torch.ones(t, s, dtype=torch.bool).tril(s - t)
    groups = q.shape[1] // k.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1), attn_mask=allowed)


@pytest.mark.parametrize(("context", "t", "batch"), [
    (2 * MIN_PIECE + 5, 7, 1), (4 * MIN_PIECE + 333, 12, 2), (9 * MIN_PIECE, 3, 1),
    (MIN_PIECE + 1, 4, 1)])
def test_split_attention_equals_one_lower_right_causal_call(context, t, batch):
    g = torch.Generator().manual_seed(context + t)
    q = torch.randn(batch, 4, t, 8, generator=g)
    k = torch.randn(batch, 2, context + t, 8, generator=g)
    v = torch.randn(batch, 2, context + t, 8, generator=g)
    assert_close(split_kv_attention(q, k, v, context), _reference(q, k, v),
                 rtol=1e-5, atol=1e-5)


def test_pieces_grow_with_the_context_up_to_four():
    assert [pieces_for(n) for n in (100, MIN_PIECE, 2 * MIN_PIECE, 10 * MIN_PIECE)] == [0, 1, 2, 4]


def test_attention_lse_returns_the_log_normaliser():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 3, 4, generator=g), torch.randn(1, 1, 5, 4, generator=g),
               torch.randn(1, 1, 5, 4, generator=g))
    out, lse = attention_lse(q, k, v, causal=False)
    scores = q @ k.repeat_interleave(2, 1).transpose(2, 3) / 2.0
    assert_close(lse, torch.logsumexp(scores, -1))
    assert_close(out, _reference_plain(q, k, v))


def _reference_plain(q, k, v):
    return torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1))
