"""Retention: segments past `record.retain_days` go, then the oldest until the camera's
recording fits `record.max_gb`; the newest footage always stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.record.layout import Segment, camera_dir, list_segments, retention_plan
from tests.pipeline.record.recorded import footage, ingest_camera, recording_cfg

DAY = 86400.0
NOW = 1_790_000_000.0


def seg(age_days: float, size: int, name: str) -> Segment:
    end = NOW - age_days * DAY
    return Segment(Path(name), end - 10, end, size)


@pytest.mark.parametrize(("segments", "days", "max_bytes", "deleted"), [
    ([seg(3, 10, "a"), seg(2, 10, "b"), seg(1, 10, "c")], 7, 100, []),
    ([seg(9, 10, "old"), seg(2, 10, "b"), seg(1, 10, "c")], 7, 100, ["old"]),
    ([seg(3, 10, "a"), seg(2, 10, "b"), seg(1, 10, "c")], 7, 20, ["a"]),
    ([seg(1, 10, "c"), seg(3, 10, "a"), seg(2, 10, "b")], 7, 10, ["a", "b"]),  # unsorted
    ([seg(9, 50, "old"), seg(2, 40, "b"), seg(1, 30, "c")], 7, 35, ["old", "b"]),
    ([seg(1, 500, "big")], 7, 100, ["big"]),  # even the newest when it alone is over
])
def test_retention_plan_deletes_expired_then_the_oldest_past_the_byte_budget(
        segments, days, max_bytes, deleted):
    assert [s.path.name for s in retention_plan(segments, NOW, days, max_bytes)] == deleted


def test_a_recording_camera_keeps_only_its_newest_segments_within_max_gb(tmp_path,
                                                                           vtest_path):
    url = footage(tmp_path, vtest_path, seconds=20)
    unlimited = recording_cfg(tmp_path / "a")
    ingest_camera(unlimited, "lobby", url)
    everything = list_segments(camera_dir(unlimited.data_dir, "lobby"))
    assert len(everything) >= 4, "20 s in segments of about 4 s"
    budget = sum(s.size for s in everything[-2:]) + 1  # room for the newest two only

    tight = recording_cfg(tmp_path / "b", max_gb=budget / 1e9)
    status = ingest_camera(tight, "lobby", url)  # the same footage, remuxed the same
    kept = list_segments(camera_dir(tight.data_dir, "lobby"))
    assert status["recording"]["errors"] == 0
    assert status["recording"]["segments_deleted"] == len(everything) - 2
    assert [(s.size, round(s.duration, 2)) for s in kept] == [
        (s.size, round(s.duration, 2)) for s in everything[-2:]], "the oldest went first"
    assert sum(s.size for s in kept) <= budget
