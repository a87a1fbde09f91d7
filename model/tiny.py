"""Tiny random Video-XL-2 checkpoints in the released layout, for tests and CPU runs.

Owns: `tiny_config()` (SigLIP at 384 px with patch 14, so the 729 -> 576 resize is real,
but hidden 32 and 2 layers; DTS on 32 channels; a 2-layer Qwen2 with hidden 64), a small
byte-level BPE tokenizer built with the `tokenizers` library that carries the ChatML and
vision-pad special tokens, and `make_tiny_checkpoint(dir, seed)`, which writes
config.json, one model.safetensors and the tokenizer files.

Does not: download anything or resemble the real weights in any way but the layout.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model.configs import DTSConfig, TextConfig, VideoXL2Config, VisionConfig

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
)
TOKENIZER_VOCAB = 400

# Enough text for a few hundred merges covering prompts, questions and answers.
_CORPUS = [
    "You are a helpful assistant.",
    "system user assistant",
    "Yes No yes no Yes, No.",
    "Is anyone fighting or lying on the floor? Answer yes or no.",
    "When did a person enter the scene? A person entered from 12.0 to 20.5 seconds.",
    "How many people walked past the camera? Two people walked past at 31s.",
    "What happened in the video? A car stopped, a man opened the door and left.",
    "Describe the scene: people walking on a street near a shop and a bicycle.",
] + [f"Time {t / 10:.1f}s:" for t in range(0, 4000, 7)]


def tiny_config() -> VideoXL2Config:
    return VideoXL2Config(
        text=TextConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=32768,
        ),
        vision=VisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=2,
            num_hidden_layers=2,
        ),
        dts=DTSConfig(channels=32, num_groups=32),
    )


def build_tiny_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )


def make_tiny_checkpoint(directory: str | Path, seed: int = 0) -> Path:
    """Write a tiny random checkpoint (config.json, model.safetensors, tokenizer) to
    `directory` and return its path. Same seed, same weights."""
    from model.checkpoint import init_weights, write_checkpoint
    from model.videoxl2 import VideoXL2ForCausalLM

    out = Path(directory)
    cfg = tiny_config()
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = VideoXL2ForCausalLM(cfg)
        # A larger std than the real init so tiny tests see non-trivial activations.
        init_weights(model, std=0.1)
    finally:
        torch.random.set_rng_state(generator_state)
    model.attach_tokenizer(build_tiny_tokenizer())
    write_checkpoint(model, out, max_shard_bytes=None)
    return out
