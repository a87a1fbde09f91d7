"""model.fuse: the linear helpers the compiled blocks and SigLIP call (CPU, fp32)."""

from __future__ import annotations

import torch
from torch import nn
from torch.testing import assert_close

from model.fuse import dense, fuse_linears, linear


def test_linear_adds_the_bias_after_the_product_under_compile(monkeypatch) -> None:
    """Under torch.compile the bias is added after the product (so inductor fuses it into
    the next elementwise kernel); the value is that of F.linear with the bias either way.
    is_compiling is forced here: inductor's CPU compile costs tens of seconds."""
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(5, 7, generator=g), torch.randn(3, 7, generator=g), torch.randn(3)
    want = torch.nn.functional.linear(x, w, b)
    assert_close(linear(x, w, b), want)
    calls = []
    real_linear = torch.nn.functional.linear

    def spy(*args):
        calls.append(len(args))
        return real_linear(*args)

    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    assert_close(linear(x, w, b), want)
    assert calls == [2]  # the product without the bias
    mod = nn.Linear(7, 3)
    assert_close(dense(mod, x), real_linear(x, mod.weight, mod.bias))


def test_fused_q_k_v_weights_are_views_of_one_tensor() -> None:
    mods = [nn.Linear(8, 4), nn.Linear(8, 2), nn.Linear(8, 2)]
    x = torch.randn(3, 8)
    want = torch.cat([m(x) for m in mods], dim=-1)
    w, b = fuse_linears(mods)
    assert_close(linear(x, w, b), want)
    assert mods[1].weight.data_ptr() == w[4:].data_ptr()  # memory shared, not doubled
