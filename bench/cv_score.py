"""Scores the CPU vision backend's `person_enter` events and people count against the by-eye
labels of vtest.avi (tests/data/vtest_labels.json). Pure Python: no OpenCV, no numpy.

The labels list every person once, each with the stretches ("segments") in which they are in
view. Every segment that starts inside the clip (its `enter_t` is not null) is a labelled entry:
the first one is the person's arrival, later ones are re-entries after leaving the frame.
People already in view at t=0 have no entry for their first segment.

What counts as a hit (`score_entries`):
- a predicted entry time and a labelled entry time match when they are at most `tolerance_s`
  apart (stream seconds, inclusive);
- matching is one-to-one: one prediction can match one label and one label one prediction, so
  a second prediction near an already matched label (a duplicate) is a false entry;
- the matching is optimal on the time line (no Hungarian needed): it maximises the number of
  certain labels matched, then the number of uncertain ones matched, then minimises the summed
  time distance;
- uncertain labelled entries are neutral: a prediction matched to one is neither a hit nor a
  false entry, and an unmatched one is not a miss;
- recall = matched certain labels / certain labels; false entries = predictions matched to no
  label; false_fraction = false entries / predictions (0.0 when nothing was predicted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "vtest_labels.json"

ReentryPolicy = Literal["count", "neutral"]


@dataclass(frozen=True)
class Segment:
    """One continuous stretch in view. None times: in view at the start / still at the end."""

    enter_t: float | None
    leave_t: float | None
    enter_edge: str | None
    leave_edge: str | None
    uncertain: bool = False


@dataclass(frozen=True)
class Person:
    id: int
    segments: tuple[Segment, ...]
    uncertain: bool = False

    @property
    def enter_t(self) -> float | None:
        return self.segments[0].enter_t

    @property
    def leave_t(self) -> float | None:
        return self.segments[-1].leave_t


@dataclass(frozen=True)
class LabelledEntry:
    person_id: int
    t: float
    edge: str | None
    uncertain: bool
    reentry: bool


@dataclass(frozen=True)
class Labels:
    clip: str
    fps: float
    duration_s: float
    people: tuple[Person, ...]
    distinct_people: int
    present_at_start: int
    max_visible_count: int
    max_visible_t: float

    @property
    def entries(self) -> list[LabelledEntry]:
        """Every labelled entry (first arrivals and re-entries), in time order."""
        out = [
            LabelledEntry(p.id, s.enter_t, s.enter_edge, s.uncertain, i > 0)
            for p in self.people
            for i, s in enumerate(p.segments)
            if s.enter_t is not None
        ]
        return sorted(out, key=lambda e: (e.t, e.person_id))

    @property
    def track_segments(self) -> int:
        """Stretches in view: the people count of a tracker that never re-identifies anyone."""
        return sum(len(p.segments) for p in self.people)

    def visible_at(self, t: float) -> int:
        """People in view at stream time t (segment bounds inclusive)."""
        n = 0
        for p in self.people:
            for s in p.segments:
                start = 0.0 if s.enter_t is None else s.enter_t
                end = self.duration_s if s.leave_t is None else s.leave_t
                if start <= t <= end:
                    n += 1
        return n


@dataclass(frozen=True)
class EntryScore:
    labelled: int  # certain labelled entries (the recall denominator)
    matched: int  # certain labelled entries hit by a prediction
    recall: float
    predicted: int
    false_entries: int
    false_fraction: float
    neutral: int  # predictions absorbed by uncertain (or neutral re-entry) labels
    tolerance_s: float
    hits: tuple[tuple[float, float], ...]  # (label t, predicted t) for the certain hits
    missed: tuple[float, ...]  # certain label times with no prediction
    false_times: tuple[float, ...]  # predicted times matched to nothing


def _segment(d: dict) -> Segment:
    return Segment(
        enter_t=None if d.get("enter_t") is None else float(d["enter_t"]),
        leave_t=None if d.get("leave_t") is None else float(d["leave_t"]),
        enter_edge=d.get("enter_edge"),
        leave_edge=d.get("leave_edge"),
        uncertain=bool(d.get("uncertain", False)),
    )


def load_labels(path: str | Path = DEFAULT_LABELS) -> Labels:
    """Reads a labels file. A person without `segments` is one segment from its top-level
    enter_t/leave_t (and edges)."""
    doc = json.loads(Path(path).read_text())
    people = []
    for p in doc["people"]:
        segs = tuple(_segment(s) for s in p["segments"]) if p.get("segments") else (_segment(p),)
        people.append(
            Person(id=int(p["id"]), segments=segs, uncertain=bool(p.get("uncertain", False)))
        )
    mv = doc.get("max_visible") or {}
    return Labels(
        clip=doc["clip"],
        fps=float(doc["fps"]),
        duration_s=float(doc["duration_s"]),
        people=tuple(people),
        distinct_people=int(doc["distinct_people"]),
        present_at_start=int(doc["present_at_start"]),
        max_visible_count=int(mv.get("count", 0)),
        max_visible_t=float(mv.get("t", 0.0)),
    )


def _match(
    labels: list[tuple[float, bool]], preds: list[float], tol: float
) -> list[tuple[int, int]]:
    """Optimal one-to-one matching of sorted label times (with a 'certain' flag) to sorted
    predicted times within tol. On a line some optimal matching never crosses (un-crossing two
    matched pairs keeps both within tol and does not add distance), so a DP over prefixes
    finds it: maximise (certain matches, uncertain matches, -summed distance)."""
    n, m = len(labels), len(preds)
    # best[i][j]: best score using labels[:i] and preds[:j]; move[i][j]: how it was reached
    best = [[(0, 0, 0.0)] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 1 skip label, 2 skip pred, 3 match
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                continue
            cands: list[tuple[tuple[int, int, float], int]] = []
            if i > 0:
                cands.append((best[i - 1][j], 1))
            if j > 0:
                cands.append((best[i][j - 1], 2))
            if i > 0 and j > 0:
                t, certain = labels[i - 1]
                d = abs(t - preds[j - 1])
                if d <= tol + 1e-9:
                    c, u, neg = best[i - 1][j - 1]
                    cands.append(((c + certain, u + (not certain), neg - d), 3))
            best[i][j], move[i][j] = max(cands, key=lambda x: x[0])
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        mv = move[i][j]
        if mv == 3:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif mv == 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def score_entries(
    labels: Labels,
    predicted_enter_times: list[float],
    tolerance_s: float = 2.5,
    reentries: ReentryPolicy = "count",
) -> EntryScore:
    """Scores predicted `person_enter` times (stream seconds) against the labelled entries.

    See the module docstring for what counts as a hit. `reentries="count"` (default) scores a
    person's re-entries like first arrivals (the person did leave the frame and appear again);
    `"neutral"` treats them like uncertain labels, for a backend that is expected to re-identify
    people who come back."""
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    entries = labels.entries
    lab = sorted(
        ((e.t, not (e.uncertain or (e.reentry and reentries == "neutral"))) for e in entries),
        key=lambda x: x[0],
    )
    preds = sorted(float(t) for t in predicted_enter_times)
    pairs = _match(lab, preds, tolerance_s)
    hit_labels = {i for i, _ in pairs}
    used_preds = {j for _, j in pairs}
    hits = tuple((lab[i][0], preds[j]) for i, j in pairs if lab[i][1])
    neutral = sum(1 for i, _ in pairs if not lab[i][1])
    certain = [i for i, (_, c) in enumerate(lab) if c]
    missed = tuple(lab[i][0] for i in certain if i not in hit_labels)
    false_times = tuple(p for j, p in enumerate(preds) if j not in used_preds)
    n_lab = len(certain)
    return EntryScore(
        labelled=n_lab,
        matched=len(hits),
        recall=len(hits) / n_lab if n_lab else 1.0,
        predicted=len(preds),
        false_entries=len(false_times),
        false_fraction=len(false_times) / len(preds) if preds else 0.0,
        neutral=neutral,
        tolerance_s=tolerance_s,
        hits=hits,
        missed=missed,
        false_times=false_times,
    )


def count_error(
    labels: Labels,
    predicted_count: int,
    against: Literal["distinct", "segments"] = "distinct",
) -> float:
    """Relative error |predicted - truth| / truth of a "how many people were seen" answer.
    truth is `distinct_people` (each person once, re-entries included in the same person), or
    with against="segments" the number of stretches in view (what a tracker that never
    re-identifies anyone would count)."""
    truth = labels.distinct_people if against == "distinct" else labels.track_segments
    if truth <= 0:
        raise ValueError("labels have no people")
    return abs(predicted_count - truth) / truth
