"""Our Qwen2 decoder against transformers' Qwen2ForCausalLM with the same weights (fp32,
CPU, tiny sizes)."""

from __future__ import annotations

import torch
from transformers import Qwen2Config
from transformers import Qwen2ForCausalLM as HFQwen2

from model.checkpoint import init_weights
from model.layers import apply_rope, rope_cos_sin
from model.qwen2 import Qwen2ForCausalLM
from model.tiny import tiny_config

VISION_PARTS = ("model.vision_tower.", "model.sae.", "model.mm_projector.")


def _hf_model(state: dict[str, torch.Tensor]) -> HFQwen2:
    t = tiny_config().text
    hf_cfg = Qwen2Config(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads,
        rope_theta=t.rope_theta,
        rms_norm_eps=t.rms_norm_eps,
        max_position_embeddings=t.max_position_embeddings,
        tie_word_embeddings=False,
    )
    hf = HFQwen2(hf_cfg).eval()
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all("rotary" in k for k in missing), missing
    return hf


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def test_qwen2_logits_equal_transformers_with_same_weights() -> None:
    torch.manual_seed(1)
    ours = Qwen2ForCausalLM(tiny_config().text).eval()
    init_weights(ours, std=0.1)
    hf = _hf_model(ours.state_dict())
    ids = torch.randint(0, tiny_config().text.vocab_size, (1, 37))
    with torch.no_grad():
        ref = hf(input_ids=ids).logits
        got = ours(ids)
    assert got.shape == ref.shape == (1, 37, tiny_config().text.vocab_size)
    assert _rel_err(got, ref) < 1e-5


def test_videoxl2_forward_text_equals_transformers_qwen2(tiny_model) -> None:
    llm_state = {k: v for k, v in tiny_model.state_dict().items() if not k.startswith(VISION_PARTS)}
    hf = _hf_model(llm_state)
    ids = torch.tensor([tiny_model.prompt.build_dense([0.0, 4.0], "Is anyone there?")[0]])
    with torch.no_grad():
        ref = hf(input_ids=ids).logits
    got = tiny_model.forward_text(ids)
    assert _rel_err(got, ref) < 1e-5


def test_rope_matches_transformers_rotary_at_arbitrary_positions() -> None:
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb as hf_apply

    t = tiny_config().text
    hf_cfg = Qwen2Config(
        hidden_size=t.hidden_size,
        num_attention_heads=t.num_attention_heads,
        rope_theta=t.rope_theta,
    )
    positions = torch.tensor([0, 5, 6, 100, 4097])
    q = torch.randn(1, t.num_attention_heads, 5, t.head_dim)
    k = torch.randn(1, t.num_key_value_heads, 5, t.head_dim)
    hf_cos, hf_sin = Qwen2RotaryEmbedding(hf_cfg)(q, positions[None])
    ref_q, ref_k = hf_apply(q, k, hf_cos, hf_sin)
    cos, sin = rope_cos_sin(positions, t.head_dim, t.rope_theta, torch.float32)
    assert cos.shape == (5, t.head_dim)
    torch.testing.assert_close(apply_rope(q, cos, sin), ref_q, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(apply_rope(k, cos, sin), ref_k, rtol=1e-6, atol=1e-6)


def test_layer_pieces_recompose_the_dense_forward(tiny_model) -> None:
    """The engine drives the layer's pieces one by one; they must add up to the layer."""
    layer = tiny_model.model.layers[0]
    x = torch.randn(1, 9, tiny_model.config.text.hidden_size)
    cfg = tiny_model.config.text
    cos, sin = rope_cos_sin(torch.arange(9), cfg.head_dim, cfg.rope_theta, torch.float32)
    with torch.no_grad():
        q, k, v = layer.self_attn.qkv(layer.input_layernorm(x))
        attn = torch.nn.functional.scaled_dot_product_attention(
            apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, is_causal=True, enable_gqa=True
        )
        h = x + layer.self_attn.o_proj(attn.transpose(1, 2).reshape(1, 9, -1))
        manual = h + layer.mlp(layer.post_attention_layernorm(h))
        torch.testing.assert_close(manual, layer(x, cos, sin), rtol=1e-5, atol=1e-6)
