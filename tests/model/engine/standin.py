"""Stand-in video LM for engine tests while (and where) the real model is not needed.

A FAKE, said plainly: transformers' real `Qwen2ForCausalLM` (tiny, random, fp32) as the
decoder, with a toy vision encoder (12x12 area pooling of each frame, mean over the 4
frames of a group, a random linear map to the hidden size) and a toy prompt builder and
tokenizer (printable ASCII maps to ids 60..154). It exposes the attributes the engine
uses from `VideoXL2ForCausalLM` (`.model`, `.lm_head`, `.config.text`, `.tokenizer`,
`.prompt`, `encode_video`). The real decoder is also the independent reference: tests
compare the engine against plain `Qwen2ForCausalLM` forwards.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

SLOTS = 144


class StandInTokenizer:
    specials = {1, 2, 3, 4, 5, 7, 8, 10, 11, 12}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        out = []
        for i in ids:
            if 60 <= i <= 154:
                out.append(chr(i - 60 + 32))
            elif 40 <= i <= 49:
                out.append(str(i - 40))
            elif i == 50:
                out.append(".")
        return "".join(out)

    @staticmethod
    def encode(text: str) -> list[int]:
        return [60 + (ord(c) - 32) for c in text if 32 <= ord(c) <= 126]


class StandInPrompt:
    vision_pad_id = 7
    im_end_id = 8
    slots_per_group = SLOTS
    yes_ids = [30]
    no_ids = [31]

    def system_prefix_ids(self) -> list[int]:
        return [1, 2, 3, 4, 5]

    def header_ids(self, t: float) -> list[int]:
        digits = [50 if c == "." else 40 + int(c) for c in f"{t:.1f}"]
        return [10, *digits, 11]

    def question_ids(self, question: str) -> list[int]:
        return [12, *StandInTokenizer.encode(question), self.im_end_id, 13, 14]

    def build_dense(self, group_times, question):
        ids, vis = list(self.system_prefix_ids()), []
        for t in group_times:
            ids += self.header_ids(t)
            vis += list(range(len(ids), len(ids) + SLOTS))
            ids += [self.vision_pad_id] * SLOTS
        return ids + self.question_ids(question), vis


def make_standin(seed: int = 0, layers: int = 2, hidden: int = 64, heads: int = 4,
                 kv_heads: int = 2) -> StandInVideoLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=256, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, max_position_embeddings=1 << 20,
                      rope_theta=10000.0, tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    return StandInVideoLM(Qwen2ForCausalLM(cfg).eval())


class StandInVideoLM(torch.nn.Module):
    def __init__(self, hf: Qwen2ForCausalLM) -> None:
        super().__init__()
        self.hf = hf
        self.model = hf.model
        self.lm_head = hf.lm_head
        self.config = SimpleNamespace(text=hf.config)
        self.proj = torch.nn.Linear(3, hf.config.hidden_size)
        self.pos = torch.nn.Parameter(torch.randn(SLOTS, hf.config.hidden_size) * 0.5)
        self.tokenizer = StandInTokenizer()
        self.prompt = StandInPrompt()

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @torch.no_grad()
    def encode_video(self, frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames)).float().div(255).permute(0, 3, 1, 2)
        x = F.adaptive_avg_pool2d(x, (12, 12)).flatten(2)  # [F, 3, 144]
        x = x.view(-1, 4, 3, SLOTS).mean(1).transpose(1, 2)  # [G, 144, 3]
        return self.proj(x) + self.pos


def make_frames(n_groups: int, seed: int, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(4 * n_groups, size, size, 3), dtype=np.uint8)
