"""Reference computations for engine tests, written independently of model/engine.

`hf_twin` copies the tiny model's decoder weights into transformers' `Qwen2ForCausalLM`
(eager attention); `dense_reference` runs one dense forward over the released prompt
layout with an optional explicit additive mask and returns logits and the post-RoPE
K/V of every layer. `feed` streams chunks of random frames into an engine.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

GROUPS = 4


def hf_twin(model) -> Qwen2ForCausalLM:
    t = model.config.text
    cfg = Qwen2Config(vocab_size=t.vocab_size, hidden_size=t.hidden_size,
                      intermediate_size=t.intermediate_size,
                      num_hidden_layers=t.num_hidden_layers,
                      num_attention_heads=t.num_attention_heads,
                      num_key_value_heads=t.num_key_value_heads, head_dim=t.head_dim,
                      rope_theta=t.rope_theta, rms_norm_eps=t.rms_norm_eps,
                      max_position_embeddings=1 << 20, tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    twin = Qwen2ForCausalLM(cfg).eval()
    keep = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.")
    state = {k: v for k, v in model.state_dict().items() if k.startswith(keep)}
    twin.load_state_dict(state, strict=True)
    return twin


def chunk_frames(n_chunks: int, seed: int, t0: float = 0.0, groups: int = GROUPS,
                 size: int = 32) -> list[tuple[np.ndarray, list[float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_chunks):
        frames = rng.integers(0, 256, size=(4 * groups, size, size, 3), dtype=np.uint8)
        out.append((frames, [t0 + 4.0 * (groups * c + g) for g in range(groups)]))
    return out


def feed(engine, camera: str, chunks, first_seq: int = 0, step: bool = True) -> None:
    for i, (frames, times) in enumerate(chunks):
        engine.submit(camera, first_seq + i, frames, times, wall_origin=1.7e9)
        if step:
            engine.step()


@torch.no_grad()
def dense_reference(model, twin, chunks, question: str, mask: torch.Tensor | None = None):
    """One dense forward of the released layout. Returns (logits [N, V], keys, values,
    chunk_offsets, n) with keys/values per layer [Hkv, N, D] (keys after RoPE)."""
    times = [t for _f, ts in chunks for t in ts]
    ids, vis = model.prompt.build_dense(times, question)
    feats = model.encode_video(np.concatenate([f for f, _t in chunks]))
    emb = model.model.embed_tokens(torch.tensor(ids)).clone()
    emb[torch.tensor(vis)] = feats.reshape(-1, emb.shape[-1])
    kwargs = {}
    if mask is not None:
        kwargs["attention_mask"] = mask[None, None]
    out = twin(inputs_embeds=emb[None], use_cache=True, **kwargs)
    cache = out.past_key_values
    keys = [layer.keys[0] for layer in cache.layers]
    values = [layer.values[0] for layer in cache.layers]
    return out.logits[0], keys, values, ids


def additive(mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
