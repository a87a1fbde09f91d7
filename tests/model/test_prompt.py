"""Prompt assembly: ChatML layout, `Time {t:.1f}s:` headers, 144 vision slots per group,
special token ids taken from the tokenizer."""

from __future__ import annotations

from model.prompt import PromptBuilder
from model.tiny import build_tiny_tokenizer

PAD = "<|vision_pad|>"


def test_ten_frame_clip_layout_is_exactly_as_released(tiny_model) -> None:
    """10 frames at 1 fps -> 3 groups starting at 0, 4 and 8 s (last group padded)."""
    prompt = tiny_model.prompt
    tok = tiny_model.tokenizer
    group_times = [float(t) for t in range(10)][::4]
    assert group_times == [0.0, 4.0, 8.0]
    ids, positions = prompt.build_dense(group_times, "When did a person enter?")
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        f"Time 0.0s:{PAD * 144}Time 4.0s:{PAD * 144}Time 8.0s:{PAD * 144}"
        "\nWhen did a person enter?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tok.decode(ids) == expected
    assert len(positions) == 3 * 144
    assert [i for i, t in enumerate(ids) if t == prompt.vision_pad_id] == positions
    # Each run of 144 slots starts right after its header.
    start = len(prompt.system_prefix_ids())
    for g, t in enumerate(group_times):
        header = prompt.header_ids(t)
        assert ids[start : start + len(header)] == header
        start += len(header)
        assert positions[g * 144 : (g + 1) * 144] == list(range(start, start + 144))
        start += 144
    assert ids[start:] == prompt.question_ids("When did a person enter?")


def test_header_text_uses_one_decimal(tiny_model) -> None:
    tok = tiny_model.tokenizer
    assert tok.decode(tiny_model.prompt.header_ids(3)) == "Time 3.0s:"
    assert tok.decode(tiny_model.prompt.header_ids(12.25)) == "Time 12.2s:"
    assert tok.decode(tiny_model.prompt.header_ids(3601.0)) == "Time 3601.0s:"


def test_special_ids_come_from_the_tokenizer_not_constants() -> None:
    tok = build_tiny_tokenizer()
    prompt = PromptBuilder(tok)
    assert prompt.vision_pad_id == tok.convert_tokens_to_ids(PAD)
    assert prompt.vision_pad_id != 151654  # the real Qwen id is not baked in
    assert prompt.im_end_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert prompt.slots_per_group == 144
    assert tok.decode(prompt.system_prefix_ids()[:1]) == "<|im_start|>"


def test_yes_and_no_ids_decode_to_the_answer_words(tiny_model) -> None:
    tok = tiny_model.tokenizer
    yes = {tok.decode([i]) for i in tiny_model.prompt.yes_ids}
    no = {tok.decode([i]) for i in tiny_model.prompt.no_ids}
    assert "Yes" in yes and "No" in no
    assert not set(tiny_model.prompt.yes_ids) & set(tiny_model.prompt.no_ids)
