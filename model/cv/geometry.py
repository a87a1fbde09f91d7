"""Box arithmetic shared by the detectors and the tracker: IoU, clipping, padding, NMS,
and merging duplicate detections of one person (a part box inside the whole-body box).

Pure numpy/OpenCV helpers on (x, y, w, h) boxes; no state and no policy.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in analysis pixels


def iou(a: Box, b: Box) -> float:
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = min(ax2, bx2) - max(a[0], b[0])
    ih = min(ay2, by2) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def center_distance(a: Box, b: Box) -> float:
    """Distance between centres in units of the larger box's height (scale-free)."""
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return float(np.hypot(dx, dy)) / max(a[3], b[3], 1)


def pad_box(box: Box, pad: float, min_w: int, min_h: int, width: int, height: int) -> Box:
    """Grow a box by `pad` of its size on each side and to at least min_w x min_h, clipped.

    A box wholly outside the frame comes back with zero width or height.
    """
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    w2 = max(w * (1 + 2 * pad), min_w)
    h2 = max(h * (1 + 2 * pad), min_h)
    x0 = int(max(0, cx - w2 / 2))
    y0 = int(max(0, cy - h2 / 2))
    x1 = int(min(width, cx + w2 / 2))
    y1 = int(min(height, cy + h2 / 2))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def merge_overlapping(boxes: list[Box], min_iou: float = 0.3) -> list[Box]:
    """Union boxes that overlap substantially (IoU >= min_iou or one inside the other).

    Only substantial overlaps are merged: chaining every touching pair would grow a few
    neighbours into one large region whose upscaled scan costs more than the overlap.
    """
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for b in merged:
            for i, o in enumerate(out):
                if iou(b, o) >= min_iou or _contains(o, b) or _contains(b, o):
                    x0, y0 = min(b[0], o[0]), min(b[1], o[1])
                    x1 = max(b[0] + b[2], o[0] + o[2])
                    y1 = max(b[1] + b[3], o[1] + o[3])
                    out[i] = (x0, y0, x1 - x0, y1 - y0)
                    changed = True
                    break
            else:
                out.append(b)
        merged = out
    return merged


def _contains(outer: Box, inner: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and outer[0] + outer[2] >= inner[0] + inner[2]
        and outer[1] + outer[3] >= inner[1] + inner[3]
    )


def nms(boxes: list[Box], scores: list[float], iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by non-maximum suppression, best score first."""
    if not boxes:
        return []
    import cv2  # here, so that the box helpers (and the config's count lines) load without it

    keep = cv2.dnn.NMSBoxes(
        [list(b) for b in boxes], [float(s) for s in scores], 0.0, iou_threshold
    )
    idx = [int(i) for i in np.asarray(keep).reshape(-1)]
    return sorted(idx, key=lambda i: -scores[i])


def inside_share(inner: Box, outer: Box) -> float:
    """Share of `inner`'s area that lies inside `outer` (0..1)."""
    iw = min(inner[0] + inner[2], outer[0] + outer[2]) - max(inner[0], outer[0])
    ih = min(inner[1] + inner[3], outer[1] + outer[3]) - max(inner[1], outer[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / float(max(inner[2] * inner[3], 1))


def merge_contained(
    boxes: list[Box], scores: list[float], min_share: float = 0.8
) -> list[tuple[int, float]]:
    """(index, score) of the boxes kept, one per person where a detector boxed one person
    several times; in input order.

    A box lying mostly (>= min_share of its area) inside a larger one is a body part or a
    second scale of the same person: it is merged into the larger box, which keeps the
    best score. Exception: a large box holding two or more such boxes side by side (not
    stacked as head/torso/legs) is a group box around several people; it is dropped
    and the people inside it are kept.
    """
    order = sorted(range(len(boxes)), key=lambda i: -(boxes[i][2] * boxes[i][3]))
    removed: set[int] = set()
    best = {i: float(scores[i]) for i in range(len(boxes))}
    for oi in order:
        if oi in removed:
            continue
        inner = [i for i in order if i != oi and i not in removed
                 and boxes[i][2] * boxes[i][3] <= boxes[oi][2] * boxes[oi][3]
                 and inside_share(boxes[i], boxes[oi]) >= min_share]
        if not inner:
            continue
        if _side_by_side([boxes[i] for i in inner]):
            removed.add(oi)
            continue
        removed.update(inner)
        best[oi] = max([best[oi], *(best[i] for i in inner)])
    return [(i, best[i]) for i in range(len(boxes)) if i not in removed]


def _side_by_side(boxes: list[Box]) -> bool:
    """True when two of the boxes barely share columns (two people, not one person's parts)."""
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            cols = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            if cols < 0.5 * min(a[2], b[2]):
                return True
    return False
