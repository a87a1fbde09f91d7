"""The person detector of the CPU vision backend: one interface, one factory.

`make_detector(cfg)` builds what `CVConfig.detector` names: "nanodet" (the CNN in
nanodet.py, the default) or "hog" (OpenCV's HOG in people.py). When NanoDet is asked for
but cannot run here (its ONNX file is not installed, or onnxruntime is missing or cannot
load the file) it logs one warning on `xlwatch.cv` naming the path and the install
command, and returns HOG, so a service always has a detector; `.name` says which one
runs (for health and benchmarks). It does not decide when to detect (analyzer.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from model.cv.config import CVConfig
from model.cv.geometry import Box
from model.cv.nanodet import ModelLoadError, NanoDetDetector
from model.cv.nanodet_install import INSTALL_COMMAND, default_model_path
from model.cv.people import Detection, PeopleDetector

log = logging.getLogger("xlwatch.cv")


class Detector(Protocol):
    name: str

    def detect(self, frame_bgr: np.ndarray,
               regions: tuple[Box, ...] | list[Box]) -> list[Detection]: ...

    def detect_full(self, frame_bgr: np.ndarray) -> list[Detection]: ...


class HogDetector(PeopleDetector):
    """people.PeopleDetector under the `Detector` interface's name."""

    name = "hog"


def model_path(cfg: CVConfig) -> Path:
    """The NanoDet ONNX file this config uses: its own, or the installed one."""
    return Path(cfg.detector_model).expanduser() if cfg.detector_model else default_model_path()


def make_detector(cfg: CVConfig) -> Detector:
    """The detector `cfg.detector` names, or HOG with one warning if NanoDet cannot run."""
    if cfg.detector == "hog":
        return _hog(cfg)
    path = model_path(cfg)
    if not path.is_file():
        return _fallback(f"{path} is missing; install it with `{INSTALL_COMMAND}`", cfg)
    try:
        return NanoDetDetector(path, min_score=cfg.detector_min_score,
                               threads=cfg.detector_threads)
    except ImportError as exc:
        return _fallback(f"onnxruntime is not importable ({exc}); install xlwatch with its "
                         f"dependencies, and the model with `{INSTALL_COMMAND}` ({path})", cfg)
    except ModelLoadError as exc:
        return _fallback(f"{exc}; reinstall it with `{INSTALL_COMMAND}`", cfg)


def _fallback(reason: str, cfg: CVConfig) -> Detector:
    log.warning("NanoDet person detector unavailable: %s. Using HOG instead.", reason)
    return _hog(cfg)


def _hog(cfg: CVConfig) -> HogDetector:
    return HogDetector(upscale=cfg.hog_upscale, min_score=cfg.hog_min_score,
                       nms_iou=cfg.nms_iou, region_pad=cfg.hog_region_pad)
