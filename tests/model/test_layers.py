"""model.layers: the one RMSNorm and RoPE that the reference decoder, the runner, the
context assembly and the fused blocks share (transformers' own versions are the reference
in test_qwen2_reference)."""

from __future__ import annotations

import torch

from model.engine import blocks
from model.layers import RMSNorm, Rope, apply_rope, rms_norm, rope_cos_sin


def test_rope_tables_held_on_a_device_equal_the_ones_built_per_call() -> None:
    rope = Rope(16, 1e6, torch.device("cpu"))
    positions = torch.tensor([0, 3, 4, 100, 70_000])
    for dtype in (torch.float32, torch.bfloat16):
        cos, sin = rope.cos_sin(positions, dtype)
        want_cos, want_sin = rope_cos_sin(positions, 16, 1e6, dtype)
        assert torch.equal(cos, want_cos) and torch.equal(sin, want_sin)
    tables = rope_cos_sin(positions, 16, 1e6, torch.float32)
    batched = rope.cos_sin(torch.stack([positions, positions + 1]), torch.float32)[0]
    assert batched.shape == (2, 5, 16) and torch.equal(batched[0], tables[0])
    x = torch.randn(2, 5, 16)
    assert torch.equal(rope.rotate(x, positions), apply_rope(x, *tables))


def test_rms_norm_module_and_function_agree_and_cast_before_the_weight() -> None:
    torch.manual_seed(0)
    norm = RMSNorm(32, 1e-6)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.1)
    x = torch.randn(3, 32, dtype=torch.bfloat16)
    h = x.float()
    want = norm.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype)
    assert torch.equal(norm(x), want) and torch.equal(rms_norm(x, norm.weight, 1e-6), want)
    assert blocks.rms_norm is rms_norm and blocks.apply_rope is apply_rope
