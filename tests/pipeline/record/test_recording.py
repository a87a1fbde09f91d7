"""Recording through the ingest path the service runs: the camera's packets remuxed
into keyframe-cut segments that tile the footage, without re-encoding; a failing disk
counted and reported while ingest goes on; `events` mode keeps only GOPs near events."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.record.gate import EventGate
from pipeline.record.layout import camera_dir, list_segments
from pipeline.record.packets import PacketRecord
from tests.pipeline.record.recorded import (
    KEYFRAME_S,
    footage,
    frame_at,
    frame_times,
    ingest_camera,
    recording_cfg,
)

FRAME_S = 0.1


def test_segments_tile_the_footage_start_at_keyframes_and_keep_its_packets(tmp_path,
                                                                           vtest_path):
    url = footage(tmp_path, vtest_path, seconds=20)
    cfg = recording_cfg(tmp_path)
    status = ingest_camera(cfg, "lobby", url)
    assert status["state"] == "finished" and status["recording"]["errors"] == 0
    segments = list_segments(camera_dir(cfg.data_dir, "lobby"))
    assert len(segments) == status["recording"]["segments_written"] >= 4
    for before, after in zip(segments, segments[1:], strict=False):
        assert after.wall_start == pytest.approx(before.wall_end, abs=2e-3), "no gap"
        assert 4.0 <= before.duration <= 4.0 + KEYFRAME_S + 1e-3  # cut at the next keyframe
    assert sum(s.duration for s in segments) == pytest.approx(20.0, abs=2e-3)
    with av.open(str(url)) as src:
        source_packets = [bytes(p) for p in src.demux(video=0) if p.size]
    recorded = []
    for seg in segments:
        with av.open(str(seg.path)) as c:
            packets = [p for p in c.demux(video=0) if p.size]
        assert packets[0].is_keyframe, f"{seg.path.name} must start at a keyframe"
        recorded += [bytes(p) for p in packets]
    assert recorded == source_packets, "remuxed, never re-encoded: the same packets"
    origin = segments[0].wall_start
    third = segments[2]
    assert np.array_equal(frame_at(third.path, 0.0),
                          frame_at(url, third.wall_start - origin))


def test_a_disk_that_cannot_be_written_never_stops_ingest(tmp_path, vtest_path):
    url = footage(tmp_path, vtest_path, seconds=10)
    cfg = recording_cfg(tmp_path)
    folder = camera_dir(cfg.data_dir, "lobby")
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder")  # every segment open fails (root can't beat it)
    status = ingest_camera(cfg, "lobby", url)
    assert status["state"] == "finished"
    assert status["chunks_processed"] == 1 and status["frames_sampled"] == 10
    rec = status["recording"]
    assert rec["segments_written"] == 0 and rec["packets_dropped"] == 0
    # the writer thread lives on: each keyframe (every 1.2 s) tries again, and counts
    assert rec["errors"] >= 8
    assert "lobby" in rec["last_error"] or "recordings" in rec["last_error"]


def test_a_file_camera_that_does_not_record_writes_no_recordings(tmp_path, vtest_path):
    url = footage(tmp_path, vtest_path, seconds=5)
    cfg = recording_cfg(tmp_path, mode="off")
    status = ingest_camera(cfg, "lobby", url)
    assert status["recording"] is None
    assert not (cfg.data_dir / "recordings").exists()


def packet(wall: float, key: bool = False) -> PacketRecord:
    ticks = round(wall * 10)
    return PacketRecord(b"x" * 10, ticks, ticks, 1, Fraction(1, 10), key, wall, 1)


def stream(seconds: float, gop_s: float = 2.0) -> list[PacketRecord]:
    n = round(seconds / FRAME_S)
    return [packet(i * FRAME_S, key=(i % round(gop_s / FRAME_S) == 0)) for i in range(n)]


@pytest.mark.parametrize(("events", "kept_gops"), [
    ([], []),
    ([(9.0, 9.5)], [8.0, 10.0]),  # the GOP holding it, and post_s (2 s) into the next
    ([(12.5, 13.0)], [10.0, 12.0, 14.0]),  # pre_s (1 s) reaches back into the GOP at 10
    ([(13.0, 13.5)], [12.0, 14.0]),
    ([(4.0, 4.0)], [2.0, 4.0, 6.0]),  # a moment: 1 s before, 2 s after (post_s)
    ([(16.0, None)], [14.0, 16.0, 18.0]),  # still open: everything after it
])
def test_events_mode_keeps_the_gops_around_events_only(events, kept_gops):
    gate = EventGate(pre_s=1.0, post_s=2.0)
    kept = []
    for pkt in stream(20.0):
        kept += gate.push(pkt)
    for start, end in events:
        gate.activity(start, end)
    gate.analysed(float("inf"))
    kept += gate.decide(final=True)
    assert sorted({round(p.wall - p.wall % 2.0, 1) for p in kept}) == kept_gops
    assert all(p.keyframe for p in kept if p.wall in kept_gops)


def test_events_mode_holds_gops_until_the_analysis_has_passed_them():
    gate = EventGate(pre_s=1.0, post_s=0.5)
    out = []
    for pkt in stream(10.0):
        out += gate.push(pkt)
    assert out == [], "nothing is decided before the analysis looked at it"
    gate.activity(0.5, 1.0)  # kept until 1.5 s: the GOP at 0 only
    gate.analysed(5.0)  # GOPs ending by 4 s are decided; later ones wait
    out += gate.decide()
    assert {round(p.wall - p.wall % 2.0) for p in out} == {0}
    assert gate.packets_dropped == 20  # the GOP at 2 s: no event near it


def test_segment_times_survive_a_restart_of_the_file_camera(tmp_path, vtest_path):
    """A restarted ingest re-reads its file with the same wall origin: no second copy."""
    url = footage(tmp_path, vtest_path, seconds=8)
    cfg = recording_cfg(tmp_path)
    ingest_camera(cfg, "lobby", url)
    first = list_segments(camera_dir(cfg.data_dir, "lobby"))
    ingest_camera(cfg, "lobby", url)
    assert list_segments(camera_dir(cfg.data_dir, "lobby")) == first
    assert len(frame_times(first[0].path)) == round(first[0].duration / FRAME_S)
