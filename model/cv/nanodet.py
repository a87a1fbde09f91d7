"""NanoDet-g person detector: a small one-stage CNN run by onnxruntime on the CPU.

The network (NanoDet-g, COCO, 416x416 input, converted from the TF.js release by
tfjs_onnx.py) finds people far smaller and more varied in pose than HOG's 64x128 window,
in one pass over the whole frame (about 26 ms per 768x576 frame on one core). It owns the
preprocessing (letterbox, BGR mean/std), the decoding of NanoDet's GFL head and the
person-only NMS; it returns the same `Detection` records as the HOG detector. It does not
fetch or convert the weights (nanodet_install.py) and does not track (tracker.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.cv.geometry import Box, nms
from model.cv.people import Detection

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10  # the GFL head predicts each side as a distribution over 0..REG_MAX strides
PERSON = 0  # COCO class 0
# NanoDet's training normalization, per BGR channel.
_MEAN = np.array([103.53, 116.28, 123.675], np.float32).reshape(3, 1, 1)
_STD = np.array([57.375, 57.12, 58.395], np.float32).reshape(3, 1, 1)


class ModelLoadError(ValueError):
    """The ONNX file is not a NanoDet model onnxruntime can run; the message names it."""


def _load_errors(ort) -> tuple[type[Exception], ...]:
    # onnxruntime's own exception types (they derive from Exception only).
    state = ort.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf",
             "InvalidGraph", "RuntimeException", "NotImplemented", "EngineError")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed in the square input: input = frame * scale + (dx, dy)."""

    scale: float
    dx: int
    dy: int


def letterbox(frame_bgr: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """The frame scaled to fit `size` x `size` (aspect kept, never stretched), centred on
    black, and the placement that maps boxes back."""
    h, w = frame_bgr.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((size, size, 3), np.uint8)
    dx, dy = (size - nw) // 2, (size - nh) // 2
    canvas[dy : dy + nh, dx : dx + nw] = cv2.resize(frame_bgr, (nw, nh),
                                                   interpolation=cv2.INTER_LINEAR)
    return canvas, Letterbox(scale, dx, dy)


def _centres(stride: int) -> np.ndarray:
    """Cell centres of one level in input pixels, in the head's row-major order: [N, 2]."""
    n = INPUT_SIZE // stride
    ys, xs = np.mgrid[0:n, 0:n]
    return (np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) + 0.5) * stride


class NanoDetDetector:
    """People in a BGR frame, whole frame per call. One instance per camera thread."""

    name = "nanodet"

    def __init__(self, model_path: str | Path, min_score: float = 0.5, nms_iou: float = 0.5,
                 threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.model_path = Path(model_path)
        try:
            self._session = ort.InferenceSession(str(self.model_path), opts,
                                                 providers=["CPUExecutionProvider"])
        except _load_errors(ort) as exc:
            raise ModelLoadError(f"{self.model_path}: onnxruntime cannot load it: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self._outputs = self._output_order()
        self._centres = [_centres(s) for s in STRIDES]
        self.min_score = min_score
        self.nms_iou = nms_iou

    def _output_order(self) -> list[tuple[str, str]]:
        """(scores, boxes) output names per stride, matched by cell count and width, so the
        code does not depend on the converter's output names or order."""
        by_shape = {tuple(o.shape[1:]): o.name for o in self._session.get_outputs()}
        pairs = []
        for s in STRIDES:
            cells = (INPUT_SIZE // s) ** 2
            try:
                pairs.append((by_shape[(cells, 80)], by_shape[(cells, 4 * (REG_MAX + 1))]))
            except KeyError as exc:
                raise ModelLoadError(f"{self.model_path}: not a NanoDet model (no [1, {cells}, "
                                 f"80|{4 * (REG_MAX + 1)}] outputs; has {sorted(by_shape)})"
                                 ) from exc
        return pairs

    def detect_full(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Every person in the frame, boxes in the frame's pixels, best score first."""
        canvas, place = letterbox(frame_bgr)
        blob = (canvas.transpose(2, 0, 1).astype(np.float32) - _MEAN) / _STD  # [3, H, W] BGR
        outs = self._session.run([n for pair in self._outputs for n in pair],
                                 {self._input: blob[None]})
        boxes: list[Box] = []
        scores: list[float] = []
        h, w = frame_bgr.shape[:2]
        for level, stride in enumerate(STRIDES):
            cls, reg = outs[2 * level][0], outs[2 * level + 1][0]  # [N, 80], [N, 44]
            hit = np.nonzero(cls[:, PERSON] >= self.min_score)[0]  # already sigmoid
            if hit.size == 0:
                continue
            ltrb = _expected_distances(reg[hit]) * stride  # [k, 4] input pixels
            c = self._centres[level][hit]
            x0y0 = (c - ltrb[:, :2] - (place.dx, place.dy)) / place.scale
            x1y1 = (c + ltrb[:, 2:] - (place.dx, place.dy)) / place.scale
            for (x0, y0), (x1, y1), sc in zip(x0y0, x1y1, cls[hit, PERSON], strict=True):
                box = _clip(x0, y0, x1, y1, w, h)
                if box[2] > 0 and box[3] > 0:
                    boxes.append(box)
                    scores.append(float(sc))
        keep = nms(boxes, scores, self.nms_iou)
        return [Detection(boxes[i], scores[i]) for i in keep]

    def detect(self, frame_bgr: np.ndarray,
               regions: tuple[Box, ...] | list[Box]) -> list[Detection]:
        """Same as `detect_full`: the CNN costs the same for the whole frame as for a few
        regions, and people who stand still (outside every motion region) keep their
        tracks. `regions` is accepted for the `Detector` interface and not used."""
        return self.detect_full(frame_bgr)


def _expected_distances(reg: np.ndarray) -> np.ndarray:
    """GFL decoding: softmax over each side's REG_MAX+1 bins, then the expected bin.
    [k, 4*(REG_MAX+1)] -> [k, 4] (left, top, right, bottom) in strides."""
    logits = reg.reshape(-1, 4, REG_MAX + 1)
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    prob = e / e.sum(axis=2, keepdims=True)
    return prob @ np.arange(REG_MAX + 1, dtype=np.float32)


def _clip(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Box:
    ix0, iy0 = int(round(min(max(x0, 0.0), w))), int(round(min(max(y0, 0.0), h)))
    ix1, iy1 = int(round(min(max(x1, 0.0), w))), int(round(min(max(y1, 0.0), h)))
    return (ix0, iy0, ix1 - ix0, iy1 - iy0)
