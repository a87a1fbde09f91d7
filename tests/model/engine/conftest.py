"""Fixtures for engine tests: the real tiny Video-XL-2 model and its transformers twin.

The model is `model.tiny.make_tiny_checkpoint` loaded by `model.load_model` (random
weights in the released layout, fp32, CPU): the GPU and the real weights cannot run here.
Its `encode_video` is wrapped in a per-group memo (the real encoder runs once per distinct
group of 4 frames; groups are encoded independently, so this changes no value) because
SigLIP at 384 px dominates test time on 2 cores. The twin is transformers' own
`Qwen2ForCausalLM` carrying the same decoder weights: the independent reference every
equality test compares against.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.model.engine.reference import hf_twin


def _memoize_groups(encode):
    cache: dict[str, torch.Tensor] = {}

    def encode_video(frames):
        arr = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        groups = arr.reshape(-1, 4, *arr.shape[1:])
        keys = [hashlib.sha1(g.tobytes()).hexdigest() for g in groups]
        miss = [i for i, k in enumerate(keys) if k not in cache]
        if miss:
            out = encode(np.concatenate([groups[i] for i in miss]))
            cache.update({keys[i]: out[j] for j, i in enumerate(miss)})
        return torch.stack([cache[k] for k in keys])

    return encode_video


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from model import load_model
    from model.tiny import make_tiny_checkpoint

    path = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"), seed=0)
    model = load_model(path)
    model.encode_video = _memoize_groups(model.encode_video)
    return model


@pytest.fixture(scope="session")
def twin(tiny_model):
    return hf_twin(tiny_model)
