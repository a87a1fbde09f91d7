"""Projector and 2x2 pooling: 144 tokens per group, row-major over the pooled 12x12 map."""

from __future__ import annotations

import pytest
import torch

from model.projector import build_projector, pool_grid


def test_pool_grid_averages_2x2_blocks_in_row_major_order() -> None:
    grid = 24
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    # token (y, x) carries [y, x] as its two features, in row-major token order
    tokens = torch.stack([y, x], dim=-1).reshape(1, grid * grid, 2).float()
    pooled = pool_grid(tokens, grid, 2)
    assert pooled.shape == (1, 144, 2)
    for k in (0, 1, 11, 12, 77, 143):
        r, c = divmod(k, 12)
        assert pooled[0, k].tolist() == [2 * r + 0.5, 2 * c + 0.5]


def test_projector_keys_and_shapes_match_mlp2x_gelu() -> None:
    proj = build_projector(32, 64)
    assert sorted(proj.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert proj(torch.randn(2, 576, 32)).shape == (2, 576, 64)


def test_groups_to_tokens_gives_144_tokens_per_group(tiny_model) -> None:
    feats = torch.randn(8, 32, 24, 24)
    with torch.no_grad():
        out = tiny_model.groups_to_tokens(feats)
    assert out.shape == (2, 144, tiny_model.config.text.hidden_size)


@pytest.mark.parametrize(("side", "size", "frames"), [(27, 24, 3), (5, 4, 2), (6, 9, 1)])
def test_bilinear_resize_as_matrix_products_equals_interpolate(side, size, frames) -> None:
    """The feature-map resize (two 1-D linear resizes as matrix products over a
    channels-last map) equals F.interpolate's bilinear resize, align_corners=False, for
    the real 27 -> 24 shrink, a small one and an enlargement."""
    import torch.nn.functional as F

    from model.videoxl2 import resize_bilinear

    maps = torch.randn(frames, side, side, 7, generator=torch.Generator().manual_seed(side))
    want = F.interpolate(maps.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                         align_corners=False).permute(0, 2, 3, 1)
    got = resize_bilinear(maps, size)
    assert got.shape == (frames, size, size, 7)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
