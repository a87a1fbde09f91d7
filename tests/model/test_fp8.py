"""FP8 linear layers (model/fp8.py): the quantisation is per row / per output channel and
its error is the size e4m3 allows. Runs the simulated path on the CPU (the native
torch._scaled_mm path needs an H100; its figures are in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model.fp8 import FP8Linear, apply_fp8, quantize_rows


def test_quantize_rows_keeps_each_row_within_e4m3_precision():
    x = torch.randn(8, 64) * torch.logspace(-3, 3, 8)[:, None]  # rows of very different scale
    q, scale = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (8, 1)
    back = q.float() * scale
    rel = (back - x).norm(dim=1) / x.norm(dim=1)
    assert float(rel.max()) < 0.05  # 3 mantissa bits: about 2-4 % per element


def test_fp8_linear_matches_the_bf16_linear_within_fp8_error():
    torch.manual_seed(0)
    lin = nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    ref = lin(x)
    out = FP8Linear(lin)(x)
    assert out.shape == ref.shape
    rel = float((out - ref).detach().norm() / ref.detach().norm())
    assert 1e-4 < rel < 0.06


def test_apply_fp8_swaps_only_the_named_parts(tiny_model):
    import copy

    model = copy.deepcopy(tiny_model)
    n = apply_fp8(model, ("llm",))
    layers = len(model.model.layers)
    assert n == 7 * layers
    assert isinstance(model.model.layers[0].mlp.up_proj, FP8Linear)
    assert isinstance(model.lm_head, nn.Linear)
    enc = model.model.vision_tower.vision_tower.vision_model.encoder
    assert isinstance(enc.layers[0].mlp.fc1, nn.Linear)
    with pytest.raises(ValueError, match="fp8 part"):
        apply_fp8(model, ("dts",))


def test_fused_siglip_qkv_keeps_values_and_yields_to_swapped_fp8_layers(tiny_model):
    """fuse_vision computes SigLIP's q/k/v as one product with the same values; once
    apply_fp8 swaps those layers the stale fused product is not used (the FP8 layers run),
    and fusing again fuses the FP8 layers with the same result."""
    import copy

    model = copy.deepcopy(tiny_model)
    pixels = torch.randn(2, 3, 384, 384, generator=torch.Generator().manual_seed(2))
    tower = model.model.vision_tower
    with torch.no_grad():
        plain = tower(pixels)
        assert model.fuse_vision() == len(tower.vision_tower.vision_model.encoder.layers)
        torch.testing.assert_close(tower(pixels), plain, rtol=1e-5, atol=1e-5)
        apply_fp8(model, ("vision",))
        fp8_separate = tower(pixels)
        assert not torch.allclose(fp8_separate, plain, atol=1e-5)  # the FP8 layers ran
        assert model.fuse_vision()
        torch.testing.assert_close(tower(pixels), fp8_separate, rtol=1e-5, atol=1e-5)
