"""DTS (`model.sae`): the released view layout, block semantics and output shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.checkpoint import init_weights
from model.configs import DTSConfig
from model.dts import SamePadConv3d, SiglipAE, TemporalAttnBlock, groups_from_frames


def _labelled_features(frames: int, channels: int, side: int = 3) -> torch.Tensor:
    """[F, C, side, side] whose every value is 1000 * frame + channel."""
    f = torch.arange(frames, dtype=torch.float32)[:, None, None, None]
    c = torch.arange(channels, dtype=torch.float32)[None, :, None, None]
    return (1000 * f + c).expand(frames, channels, side, side).contiguous()


def test_group_view_takes_channel_runs_not_frames_into_time_slots() -> None:
    """The released plain `view`: DTS channel c, time slot t of group g holds frame
    4g + (4c + t) // C, channel (4c + t) % C."""
    channels = 8
    blocks = groups_from_frames(_labelled_features(8, channels))  # [2, 8, 4, 3, 3]
    assert blocks.shape == (2, channels, 4, 3, 3)
    # Hand-picked cells: slots of DTS channel 0 are frame 0's channels 0..3, not frames 0..3.
    assert blocks[0, 0, :, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert blocks[0, 1, :, 0, 0].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert blocks[0, 2, :, 2, 1].tolist() == [1000.0, 1001.0, 1002.0, 1003.0]
    assert blocks[1, 7, :, 1, 1].tolist() == [7004.0, 7005.0, 7006.0, 7007.0]
    for g in range(2):
        for c in range(channels):
            for t in range(4):
                flat = 4 * c + t
                frame, chan = 4 * g + flat // channels, flat % channels
                assert blocks[g, c, t, 1, 2].item() == 1000 * frame + chan


def test_group_view_refuses_frame_counts_not_multiple_of_four() -> None:
    with pytest.raises(ValueError, match="frames=6"):
        groups_from_frames(torch.zeros(6, 8, 2, 2))


def test_temporal_block_matches_released_formula_computed_by_loops() -> None:
    """Logit (i, j) = q_i.k_j / sqrt(C) + q_j.table_k[clip(i-j)] / C**0.25 (the released,
    transposed relative term); output i = sum_j w_ij (v_j + table_v[clip(j-i)])."""
    torch.manual_seed(4)
    c, t, m = 32, 4, 2  # max distance 2 < T - 1, so clipping is exercised
    block = TemporalAttnBlock(c, num_groups=32, max_relative_position=m).eval()
    init_weights(block, std=0.3)
    x = torch.randn(1, c, t, 1, 1)
    with torch.no_grad():
        got = block(x)
        seq = x[:, :, :, 0, 0]  # [1, C, T]
        q, k, v = block.qkv(block.norm(seq))[0].chunk(3, dim=0)  # each [C, T]
        tk = block.relative_position_k.embeddings_table
        tv = block.relative_position_v.embeddings_table
        logits = torch.zeros(t, t)
        for i in range(t):
            for j in range(t):
                rel = max(-m, min(m, i - j)) + m
                logits[i, j] = q[:, i] @ k[:, j] / math.sqrt(c) + q[:, j] @ tk[rel] / c**0.25
        w = logits.softmax(dim=-1)
        out = torch.zeros(c, t)
        for i in range(t):
            for j in range(t):
                out[:, i] += w[i, j] * (v[:, j] + tv[max(-m, min(m, j - i)) + m])
        want = seq[0] + block.proj_out(out[None])[0]
    torch.testing.assert_close(got[0, :, :, 0, 0], want, rtol=1e-5, atol=1e-5)


def test_same_pad_conv_replicates_edges_and_halves_time() -> None:
    """A constant input stays constant only with replicate padding (zeros would not)."""
    conv = SamePadConv3d(4, temporal_stride=2)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0 / (4 * 27))
        conv.conv.bias.zero_()
        y = conv(torch.full((1, 4, 4, 5, 5), 3.0))
    assert y.shape == (1, 4, 2, 5, 5)
    torch.testing.assert_close(y, torch.full_like(y, 3.0))


def test_temporal_encoding_is_added_per_time_slot_and_channel() -> None:
    ae = SiglipAE(DTSConfig(channels=32))
    ae.encoder = torch.nn.Identity()
    with torch.no_grad():
        ae.temporal_encoding.copy_(torch.arange(4 * 32, dtype=torch.float32).view(4, 32))
        y = ae(torch.zeros(1, 32, 4, 2, 2))
    assert y[0, 5, 3, 1, 0].item() == 3 * 32 + 5
    assert y[0, 31, 0, 0, 1].item() == 31


def test_sae_reduces_four_time_slots_to_one() -> None:
    torch.manual_seed(5)
    ae = SiglipAE(DTSConfig(channels=32)).eval()
    with torch.no_grad():
        y = ae(torch.randn(3, 32, 4, 6, 6))
    assert y.shape == (3, 32, 1, 6, 6)


@pytest.mark.parametrize("frames", range(1, 10))
def test_encode_video_gives_one_group_per_four_frames(tiny_model, frames: int) -> None:
    video = np.random.default_rng(frames).integers(0, 256, (frames, 48, 64, 3), dtype=np.uint8)
    out = tiny_model.encode_video(video)
    assert out.shape == (math.ceil(frames / 4), 144, tiny_model.config.text.hidden_size)
    assert torch.isfinite(out).all()


def test_encode_video_pads_by_repeating_the_last_frame(tiny_model) -> None:
    video = np.random.default_rng(7).integers(0, 256, (5, 48, 64, 3), dtype=np.uint8)
    padded = np.concatenate([video, np.repeat(video[-1:], 3, axis=0)])
    zero_padded = np.concatenate([video, np.zeros_like(video[:3])])
    a, b = tiny_model.encode_video(video), tiny_model.encode_video(padded)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a[1], tiny_model.encode_video(zero_padded)[1])


def test_encode_video_groups_are_independent_so_cameras_batch(tiny_model) -> None:
    rng = np.random.default_rng(8)
    cam_a = rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    cam_b = rng.integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
    both = tiny_model.encode_video(np.concatenate([cam_a, cam_b]))
    torch.testing.assert_close(both[:1], tiny_model.encode_video(cam_a), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(both[1:], tiny_model.encode_video(cam_b), rtol=1e-4, atol=1e-4)


def test_spatial_block_is_one_head_attention_over_positions_per_time_slot() -> None:
    from model.dts import SpatialAttnBlock

    torch.manual_seed(6)
    block = SpatialAttnBlock(32, num_groups=32).eval()
    init_weights(block, std=0.2)
    x = torch.randn(1, 32, 2, 3, 3)
    with torch.no_grad():
        got = block(x)
        n = block.norm(x)
        q, k, v = block.q(n), block.k(n), block.v(n)  # [1, C, T, 3, 3]
        want = torch.empty_like(x)
        for t in range(2):
            qt, kt, vt = (y[0, :, t].reshape(32, 9) for y in (q, k, v))  # [C, HW]
            w = (qt.T @ kt / math.sqrt(32)).softmax(dim=-1)  # [HW query, HW key]
            want[0, :, t] = (vt @ w.T).reshape(32, 3, 3)
        want = x + block.proj_out(want)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_encode_video_is_independent_of_internal_batch_sizes(tiny_model, monkeypatch) -> None:
    import model.videoxl2 as videoxl2

    video = np.random.default_rng(9).integers(0, 256, (9, 32, 40, 3), dtype=np.uint8)
    whole = tiny_model.encode_video(video)
    monkeypatch.setattr(videoxl2, "VISION_BATCH_FRAMES", 2)
    monkeypatch.setattr(videoxl2, "DTS_BATCH_GROUPS", 1)
    split = tiny_model.encode_video(video)
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("groups", "side", "channels"), [(2, 4, 32), (3, 5, 64)])
def test_fast_dts_equals_the_released_formulation(groups: int, side: int, channels: int) -> None:
    """model.dts (channels-last tokens, fused q/k/v products, fp32 softmax and GroupNorm
    statistics) computes what the released layout computes (tests/model/dts_reference.py),
    block by block and end to end, with the same state dict."""
    from tests.model import dts_reference as released

    torch.manual_seed(groups * 10 + side)
    cfg = DTSConfig(channels=channels, max_relative_position=2)
    fast = SiglipAE(cfg).eval()
    init_weights(fast, std=0.1)
    ref = released.SiglipAE(cfg).eval()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(groups, channels, 4, side, side)
    with torch.no_grad():
        for got_block, ref_block in zip(fast.encoder, ref.encoder, strict=True):
            torch.testing.assert_close(got_block(x), ref_block(x), rtol=1e-4, atol=1e-4)
        got, want = fast(x), ref(x)
    assert got.shape == (groups, channels, 1, side, side)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_compiled_vision_calls_all_get_one_shape_and_one_layout(tiny_model, monkeypatch) -> None:
    """A compiled tower recompiles on any new shape or stride (tens of seconds on a GPU):
    full batches (channels-last views of the frames) and the padded last batch must reach it
    alike. Recorded with a stand-in for the compiled function; values are the eager ones."""
    import copy

    model = copy.deepcopy(tiny_model)
    seen = []

    def record(fn):
        def call(x):
            seen.append((tuple(x.shape), x.stride()))
            return fn(x)
        return call

    model._vision_fn = record(model.model.vision_tower)
    model._sae_fn = record(model.model.sae)
    model.vision_batch = 4
    video = np.random.default_rng(3).integers(0, 256, (10, 32, 40, 3), dtype=np.uint8)
    got = model.encode_video(video)
    towers = [s for s in seen if len(s[0]) == 4]
    assert len(towers) == 3 and len(set(towers)) == 1  # 4 + 4 + (2 padded to 4)
    torch.testing.assert_close(got, tiny_model.encode_video(video), rtol=1e-4, atol=1e-4)
