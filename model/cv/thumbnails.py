"""Thumbnails: a JPEG of one analysis frame with the detections drawn, label and time.

Evidence for operators ("who entered", not only "when"). Pure function of its inputs;
it keeps no frames and decides nothing about which frame is best (events.py does).
"""

from __future__ import annotations

import time as _time

import cv2
import numpy as np

from model.cv.geometry import Box

_GREEN = (40, 220, 40)
_RED = (40, 40, 230)
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def render_thumbnail(
    frame_bgr: np.ndarray,
    boxes: list[Box] | tuple[Box, ...],
    label: str,
    t: float,
    wall: float | None = None,
    max_width: int = 480,
    quality: int = 80,
    alarm: bool = False,
) -> bytes:
    """JPEG bytes of `frame_bgr` (not modified) downscaled to max_width, boxes drawn."""
    h, w = frame_bgr.shape[:2]
    scale = min(1.0, max_width / float(w))
    img = cv2.resize(frame_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
        if scale < 1.0 else frame_bgr.copy()
    colour = _RED if alarm else _GREEN
    for x, y, bw, bh in boxes:
        p0 = (int(x * scale), int(y * scale))
        p1 = (int((x + bw) * scale), int((y + bh) * scale))
        cv2.rectangle(img, p0, p1, colour, 2)
    stamp = f"t={t:.1f}s"
    if wall is not None:
        stamp += _time.strftime("  %Y-%m-%d %H:%M:%S UTC", _time.gmtime(wall))
    _text(img, label, (4, 4), colour)
    _text(img, stamp, (4, img.shape[0] - 22), _BLACK)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # imencode only fails on an invalid image, which the caller never passes
        raise ValueError(f"frame_bgr: cannot encode image of shape {frame_bgr.shape}")
    return buf.tobytes()


def _text(img: np.ndarray, text: str, org: tuple[int, int], bg: tuple[int, int, int]) -> None:
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (tw, th), base = cv2.getTextSize(text, font, size, thick)
    x, y = org
    cv2.rectangle(img, (x, y), (x + tw + 6, y + th + base + 6), bg, -1)
    cv2.putText(img, text, (x + 3, y + th + 3), font, size, _WHITE, thick, cv2.LINE_AA)
