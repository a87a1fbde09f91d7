"""Frame preprocessing on real footage against the released PIL-based processor."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.preprocess import preprocess_frames


def _read_rgb_frames(path: Path, count: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    for _ in range(count):
        ok, bgr = cap.read()
        assert ok, f"could not read a frame from {path}"
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


def test_resize_and_scale_match_pil_bicubic_on_real_footage(vtest_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    frames = _read_rgb_frames(vtest_path, 3)  # 768 x 576
    ours = preprocess_frames(frames, 384)
    assert ours.shape == (3, 3, 384, 384) and ours.dtype == torch.float32
    assert ours.min() >= -1.0 and ours.max() <= 1.0
    ref = np.stack(
        [np.asarray(image.fromarray(f).resize((384, 384), image.BICUBIC)) for f in frames]
    )
    ref_t = torch.from_numpy(ref).permute(0, 3, 1, 2).float() / 255.0 * 2 - 1
    diff = (ours - ref_t).abs()
    assert diff.mean() < 0.003  # under half an 8-bit level on average
    assert torch.quantile(diff.flatten()[::7], 0.99) <= 2 * 2 / 255 + 1e-6


def test_preprocess_rejects_bad_frames_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="dtype"):
        preprocess_frames(np.zeros((1, 8, 8, 3), dtype=np.float32), 384)
    with pytest.raises(ValueError, match=r"shape=\(8, 8, 3\)"):
        preprocess_frames(np.zeros((8, 8, 3), dtype=np.uint8), 384)
    with pytest.raises(ValueError, match="empty"):
        preprocess_frames(np.zeros((0, 8, 8, 3), dtype=np.uint8), 384)
