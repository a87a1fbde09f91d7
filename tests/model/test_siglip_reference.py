"""Our SigLIP tower against transformers' SiglipVisionModel with the same weights and the
same truncation (last layer dropped, features before the post-layernorm)."""

from __future__ import annotations

import torch
from transformers import SiglipVisionConfig
from transformers import SiglipVisionModel as HFSiglip

from model.checkpoint import init_weights
from model.siglip import SigLipVisionTower
from model.tiny import tiny_config


def test_siglip_features_equal_transformers_truncated_tower() -> None:
    torch.manual_seed(2)
    vc = tiny_config().vision
    ours = SigLipVisionTower(vc).eval()
    init_weights(ours, std=0.1)
    hf_cfg = SiglipVisionConfig(
        hidden_size=vc.hidden_size,
        intermediate_size=vc.intermediate_size,
        num_attention_heads=vc.num_attention_heads,
        num_hidden_layers=vc.num_hidden_layers + 1,  # the released tower drops one layer
        image_size=vc.image_size,
        patch_size=vc.patch_size,
        layer_norm_eps=vc.layer_norm_eps,
        vision_use_head=False,
    )
    hf = HFSiglip(hf_cfg).eval()
    # transformers 5 flattened `vision_model` away; the released keys still carry it.
    hf_body = getattr(hf, "vision_model", hf)
    del hf_body.encoder.layers[-1:]
    hf_body.load_state_dict(ours.vision_tower.vision_model.state_dict(), strict=True)
    pixels = torch.rand(3, 3, vc.image_size, vc.image_size) * 2 - 1
    with torch.no_grad():
        ref = hf(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
        got = ours(pixels)
    assert got.shape == (3, vc.patches_per_side**2, vc.hidden_size) == (3, 729, 32)
    assert ((got - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_siglip_output_does_not_apply_post_layernorm() -> None:
    """Changing the post-layernorm weights must not change the features."""
    torch.manual_seed(3)
    ours = SigLipVisionTower(tiny_config().vision).eval()
    pixels = torch.rand(1, 3, 384, 384)
    with torch.no_grad():
        before = ours(pixels)
        ours.vision_tower.vision_model.post_layernorm.weight.mul_(5.0)
        after = ours(pixels)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
