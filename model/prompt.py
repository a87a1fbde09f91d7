"""Prompt assembly in the released ChatML layout, as token ids.

Owns: the token ids of the system prefix, of each `Time {t:.1f}s:` header, of the question
suffix, and the dense reference layout:

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    Time 0.0s:<|vision_pad|> x 144  Time 4.0s:<|vision_pad|> x 144 ...
    \\n{question}<|im_end|>\\n<|im_start|>assistant\\n

The released code replaces the `<image>` placeholder by the header/pad sequence and
tokenizes the text before and after it separately; so do we. Every special token id comes
from the tokenizer.

Does not: embed tokens or run the model.
"""

from __future__ import annotations

from typing import Any

from model.configs import VISION_PAD_TOKEN

SYSTEM_PROMPT = "You are a helpful assistant."
SLOTS_PER_GROUP = 144


def _special_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == getattr(tokenizer, "unk_token_id", None):
        raise ValueError(f"tokenizer: special token {token!r} is missing")
    return int(token_id)


class PromptBuilder:
    slots_per_group = SLOTS_PER_GROUP

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.vision_pad_id = _special_id(tokenizer, VISION_PAD_TOKEN)
        self.im_start_id = _special_id(tokenizer, "<|im_start|>")
        self.im_end_id = _special_id(tokenizer, "<|im_end|>")
        self._prefix = self.encode(
            f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
        )
        self.yes_ids = self._first_ids(("Yes", "yes"))
        self.no_ids = self._first_ids(("No", "no"))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _first_ids(self, words: tuple[str, ...]) -> list[int]:
        ids: list[int] = []
        for word in words:
            first = self.encode(word)[0]
            if first not in ids:
                ids.append(first)
        return ids

    def system_prefix_ids(self) -> list[int]:
        return list(self._prefix)

    def header_ids(self, t: float) -> list[int]:
        """Tokens of `Time {t:.1f}s:` (t = first frame time of a 4-frame group)."""
        return self.encode(f"Time {t:.1f}s:")

    def question_ids(self, question: str) -> list[int]:
        """Everything after the video: `\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`."""
        return self.encode(f"\n{question}<|im_end|>\n<|im_start|>assistant\n")

    def build_dense(self, group_times: list[float], question: str) -> tuple[list[int], list[int]]:
        """The whole released prompt: (input_ids, positions of the vision-pad slots)."""
        ids = self.system_prefix_ids()
        positions: list[int] = []
        for t in group_times:
            ids += self.header_ids(t)
            positions += range(len(ids), len(ids) + self.slots_per_group)
            ids += [self.vision_pad_id] * self.slots_per_group
        ids += self.question_ids(question)
        return ids, positions
