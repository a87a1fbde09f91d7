"""bench/cv_score.py: the entry scorer and people-count error, and the consistency of the
by-eye labels of vtest.avi (tests/data/vtest_labels.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cv_score import DEFAULT_LABELS, Labels, count_error, load_labels, score_entries

LABELS_PATH = Path(__file__).resolve().parents[1] / "data" / "vtest_labels.json"


def write_labels(tmp_path: Path, people: list[dict], distinct: int | None = None) -> Labels:
    doc = {
        "clip": "x.avi",
        "fps": 10,
        "duration_s": 60.0,
        "people": people,
        "max_visible": {"count": 1, "t": 0.0},
        "distinct_people": len(people) if distinct is None else distinct,
        "present_at_start": sum(1 for p in people if p.get("enter_t") is None),
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(doc))
    return load_labels(path)


@pytest.fixture
def simple(tmp_path: Path) -> Labels:
    """Entries at 10, 20, 30 (certain), one present at start, one uncertain entry at 45."""
    return write_labels(
        tmp_path,
        [
            {"id": 1, "enter_t": None, "leave_t": 5.0},
            {"id": 2, "enter_t": 10.0, "leave_t": 15.0},
            {"id": 3, "enter_t": 20.0, "leave_t": None},
            {"id": 4, "enter_t": 30.0, "leave_t": 40.0},
            {"id": 5, "enter_t": 45.0, "leave_t": 50.0, "uncertain": True},
        ],
    )


def test_perfect_predictions_score_one(simple: Labels) -> None:
    s = score_entries(simple, [10.0, 20.0, 30.0])
    assert (s.recall, s.false_entries, s.false_fraction) == (1.0, 0, 0.0)
    assert s.labelled == s.matched == 3
    assert s.hits == ((10.0, 10.0), (20.0, 20.0), (30.0, 30.0))


def test_order_and_small_shifts_do_not_matter(simple: Labels) -> None:
    s = score_entries(simple, [31.9, 8.0, 22.5])  # 2.5 exactly is still a hit
    assert s.recall == 1.0 and s.false_entries == 0


def test_shift_beyond_tolerance_misses_and_is_false(simple: Labels) -> None:
    s = score_entries(simple, [12.6, 20.0, 30.0])
    assert s.recall == pytest.approx(2 / 3)
    assert s.missed == (10.0,)
    assert s.false_times == (12.6,)
    assert s.false_fraction == pytest.approx(1 / 3)
    assert score_entries(simple, [12.6], tolerance_s=3.0).matched == 1


def test_duplicates_become_false_entries(simple: Labels) -> None:
    s = score_entries(simple, [10.0, 10.5, 11.0, 20.0, 30.0])
    assert s.recall == 1.0
    assert s.false_entries == 2 and s.false_fraction == pytest.approx(2 / 5)
    assert s.hits[0] == (10.0, 10.0)  # the closest prediction is the hit


def test_uncertain_entries_are_neutral(simple: Labels) -> None:
    without = score_entries(simple, [10.0, 20.0, 30.0])
    with_pred = score_entries(simple, [10.0, 20.0, 30.0, 44.0])
    assert with_pred.recall == without.recall == 1.0  # not a miss when not predicted
    assert with_pred.false_entries == 0 and with_pred.neutral == 1  # not false when predicted
    assert with_pred.labelled == 3
    dup = score_entries(simple, [44.0, 46.0])  # one-to-one for uncertain ones too
    assert (dup.neutral, dup.false_entries) == (1, 1)


def test_matching_is_optimal_not_first_come(tmp_path: Path) -> None:
    # a greedy nearest match would give 5.0 to the label at 5.0 and leave 7.4 unmatched
    labels = write_labels(
        tmp_path,
        [
            {"id": 1, "enter_t": 5.0, "leave_t": 6.0},
            {"id": 2, "enter_t": 7.4, "leave_t": 9.0},
        ],
    )
    s = score_entries(labels, [3.0, 5.0])
    assert s.recall == 1.0 and s.false_entries == 0
    # a prediction near both a certain and an uncertain label goes to the certain one
    labels = write_labels(
        tmp_path,
        [
            {"id": 1, "enter_t": 10.0, "leave_t": 12.0},
            {"id": 2, "enter_t": 12.0, "leave_t": 14.0, "uncertain": True},
        ],
    )
    s = score_entries(labels, [11.5])
    assert (s.matched, s.neutral, s.false_entries) == (1, 0, 0)


def test_no_predictions(simple: Labels) -> None:
    s = score_entries(simple, [])
    assert (s.recall, s.false_fraction, s.predicted) == (0.0, 0.0, 0)
    assert s.missed == (10.0, 20.0, 30.0)


def test_reentries_count_or_are_neutral(tmp_path: Path) -> None:
    labels = write_labels(
        tmp_path,
        [
            {
                "id": 1,
                "enter_t": None,
                "leave_t": None,
                "segments": [
                    {"enter_t": None, "leave_t": 10.0},
                    {"enter_t": 20.0, "leave_t": None},
                ],
            },
            {"id": 2, "enter_t": 5.0, "leave_t": 8.0},
        ],
    )
    assert [(e.t, e.reentry) for e in labels.entries] == [(5.0, False), (20.0, True)]
    assert score_entries(labels, [5.0]).recall == 0.5
    neutral = score_entries(labels, [5.0], reentries="neutral")
    assert neutral.recall == 1.0 and neutral.labelled == 1
    assert score_entries(labels, [5.0, 20.0], reentries="neutral").false_entries == 0
    assert labels.track_segments == 3
    assert (
        labels.visible_at(0.0) == 1 and labels.visible_at(6.0) == 2 and labels.visible_at(15.0) == 0
    )


def test_count_error(simple: Labels) -> None:
    assert count_error(simple, 5) == 0.0
    assert count_error(simple, 4) == pytest.approx(0.2)
    assert count_error(simple, 10) == pytest.approx(1.0)


# ---- the vtest.avi labels ----


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(LABELS_PATH.read_text())


def test_default_path_is_the_labels_file() -> None:
    assert DEFAULT_LABELS.resolve() == LABELS_PATH.resolve()


def test_vtest_labels_are_consistent(doc: dict) -> None:
    dur = doc["duration_s"]
    assert (doc["clip"], doc["fps"], dur) == ("vtest.avi", 10, 79.5)
    people = doc["people"]
    ids = [p["id"] for p in people]
    assert len(ids) == len(set(ids))
    assert doc["distinct_people"] == len(people)
    assert doc["present_at_start"] == sum(1 for p in people if p["enter_t"] is None)
    edges = {"left", "right", "top", "bottom", "inside"}
    for p in people:
        segs = p.get("segments") or [p]
        assert p["enter_t"] == segs[0]["enter_t"] and p["leave_t"] == segs[-1]["leave_t"]
        if p["enter_t"] is not None and p["leave_t"] is not None:
            assert p["enter_t"] < p["leave_t"], p["id"]
        prev_leave = None
        for k, s in enumerate(segs):
            a, b = s["enter_t"], s["leave_t"]
            assert a is None or 0 <= a <= dur, p["id"]
            assert b is None or 0 <= b <= dur, p["id"]
            assert a is not None or k == 0, p["id"]  # only the first can start before t=0
            assert b is not None or k == len(segs) - 1, p["id"]  # only the last runs to the end
            if a is not None and b is not None:
                assert a < b, p["id"]
            if prev_leave is not None:
                assert a > prev_leave, p["id"]  # segments are ordered and do not overlap
            prev_leave = b
            assert (a is None) == (s["enter_edge"] is None) and (s["enter_edge"] in edges | {None})
            assert (b is None) == (s["leave_edge"] is None) and (s["leave_edge"] in edges | {None})
            for box in (s["enter_bbox"], s["leave_bbox"]):
                x, y, w, h = box
                assert w > 0 and h > 0 and 0 <= x <= 768 - w and 0 <= y <= 576 - h, p["id"]
            if s.get("uncertain"):
                assert s.get("uncertain_reason"), p["id"]


def test_vtest_summary_matches_the_people(doc: dict) -> None:
    labels = load_labels(LABELS_PATH)
    assert labels.distinct_people == len(labels.people)
    assert doc["entry_events"] == len(labels.entries)
    assert doc["track_segments"] == labels.track_segments
    assert doc["reentries"] == sum(1 for e in labels.entries if e.reentry)
    mv = doc["max_visible"]
    assert labels.visible_at(mv["t"]) == mv["count"]
    samples = [i / 10 for i in range(int(labels.duration_s * 10) + 1)]
    assert max(labels.visible_at(t) for t in samples) == mv["count"]
    # the labels score perfectly against themselves
    s = score_entries(labels, [e.t for e in labels.entries])
    assert s.recall == 1.0 and s.false_entries == 0
