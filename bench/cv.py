"""The CPU vision backend on labelled footage, through `xlwatch analyze` (the product's CLI).

For each detector (NanoDet, HOG) and sampling rate, runs

    xlwatch analyze FILE -q "when did people enter?" --json --config <cv.detector, fps>
    xlwatch analyze FILE -q "how many people were seen?" --json --config ...

in a subprocess, scores the answer's `person_enter` intervals against the by-eye labels
(tests/data/vtest_labels.json, `bench/cv_score.py`: one-to-one within `--tolerance-s`,
re-entries count as entries) and the stated count against the distinct people, records
which detector actually ran (`detector_ran`: NanoDet falls back to HOG when it cannot
load), and measures the CPU seconds the whole command took (decode, motion, detector,
tracker, answer; the interpreter's start-up included) per second of footage: its inverse
is how many 1 fps cameras one core keeps up with.

    python bench/cv.py [--file vtest.avi] [--labels tests/data/vtest_labels.json]
        [--detectors nanodet,hog] [--fps 1,2] [--tolerance-s 2.5] [--cv KEY=VALUE ...]

One JSON line per run (`{"bench": "cv", ...}`) on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cv_score import DEFAULT_LABELS, count_error, load_labels, score_entries  # noqa: E402

CLI = [sys.executable, "-c", "from pipeline.app.cli import main; main()"]
ENTER_Q = "when did people enter?"
COUNT_Q = "how many people were seen?"


def analyze(file: Path, question: str, config: Path) -> tuple[dict, float, float]:
    """(the --json answer, wall seconds, CPU seconds of the command)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([*CLI, "analyze", str(file), "-q", question, "--json", "--config",
                          str(config)], cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"xlwatch analyze failed ({out.returncode}): {out.stderr[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out.stdout), wall, cpu


def detector_that_runs(detector: str, overrides: dict) -> str:
    """What the command's analyzer will run for `detector` here: NanoDet falls back to
    HOG (with a warning) when its model or onnxruntime is missing, and a run labelled
    "nanodet" would then measure HOG."""
    from model.cv.config import CVConfig
    from model.cv.detector import make_detector

    return make_detector(CVConfig(**{**overrides, "detector": detector})).name


def first_number(text: str) -> int | None:
    words = {"no": 0, "one": 1, "a": 1}  # "No person was seen", "A person was seen"
    m = re.search(r"\b(\d+|no|one|a)\b", text.lower())
    if m is None:
        return None
    return int(m.group(1)) if m.group(1).isdigit() else words[m.group(1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=ROOT.parent / "shared" / "data" / "vtest.avi")
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    ap.add_argument("--detectors", default="nanodet,hog")
    ap.add_argument("--fps", default="1,2")
    ap.add_argument("--tolerance-s", type=float, default=2.5)
    ap.add_argument("--cv", action="append", default=[], metavar="KEY=VALUE",
                    help="a cv setting over the defaults (repeatable), e.g. track_min_hits=3")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.cv)}
    if not args.file.is_file():
        sys.exit(f"--file: no such file: {args.file}")
    labels = load_labels(args.labels)
    with tempfile.TemporaryDirectory(prefix="xlwatch-cv-") as tmp:
        for detector in args.detectors.split(","):
            for fps in (float(x) for x in args.fps.split(",")):
                cfg = Path(tmp) / f"{detector}-{fps:g}.yaml"
                cfg.write_text(json.dumps({  # JSON is YAML
                    "data_dir": str(Path(tmp) / "data"), "allowed_roots": [str(args.file.parent)],
                    "cv": {**overrides, "detector": detector}, "camera_defaults": {"fps": fps}}))
                ran = detector_that_runs(detector, overrides)
                if ran != detector:
                    print(f"warning: {detector} cannot run here; the runs measure {ran}",
                          file=sys.stderr)
                entered, wall, cpu = analyze(args.file, ENTER_Q, cfg)
                counted, _, _ = analyze(args.file, COUNT_Q, cfg)
                times = [i["start"] for i in entered["intervals"]
                         if i.get("label") == "person_enter"]
                score = score_entries(labels, times, args.tolerance_s)
                count = first_number(counted["answer"])
                print(json.dumps({
                    "bench": "cv", "file": args.file.name, "detector": detector,
                    "detector_ran": ran, "fps": fps,
                    "cv": overrides,
                    "entries_labelled": score.labelled, "entries_found": score.matched,
                    "entry_recall": round(score.recall, 3), "entries_stated": score.predicted,
                    "false_entries": score.false_entries,
                    "false_fraction": round(score.false_fraction, 3),
                    "missed_at": score.missed, "false_at": score.false_times,
                    "people_labelled": labels.distinct_people, "people_stated": count,
                    "count_error": None if count is None else round(
                        count_error(labels, count), 3),
                    "count_answer": counted["answer"],
                    "footage_s": labels.duration_s, "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "cameras_per_core": round(labels.duration_s / cpu, 1) if cpu else None,
                    "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                    "command": "python bench/cv.py " + " ".join(sys.argv[1:]),
                }), flush=True)


if __name__ == "__main__":
    main()
