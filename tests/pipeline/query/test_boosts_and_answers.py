"""Table tests for the service-side pure helpers: times, thumbnail paths, boosts, edges."""

from __future__ import annotations

import pytest

from pipeline.config import config_from_dict
from pipeline.evidence import format_span, format_wall, save_thumbnail, thumbnail_relpath
from pipeline.messages import Event, MemoryAnswer, Question
from pipeline.query.core import QueryError, validate_question
from pipeline.query.llm import answer_llm, boosts_for

T0 = 1_795_000_000.0  # 2026-11-18 ... UTC


def ev(id_, kind, t0, t1, seq, thumb=None):
    return Event(id_, "lobby", kind, t0, t1, T0 + t0, None if t1 is None else T0 + t1,
                       chunk_seq=seq, thumbnail=thumb)


@pytest.mark.parametrize("wall, t, tz, expected", [
    (0.0, 20.0, "UTC", "1970-01-01 00:00:00 UTC (t=20.0s)"),
    (0.0, None, "UTC", "1970-01-01 00:00:00 UTC"),
    (0.0, 1.25, "Europe/Paris", "1970-01-01 01:00:00 CET (t=1.2s)"),
    (0.0, 3.0, "Not/AZone", "1970-01-01 00:00:00 UTC (t=3.0s)"),
])
def test_format_wall_shows_wall_clock_zone_and_stream_time(wall, t, tz, expected):
    assert format_wall(wall, t, tz) == expected


def test_format_span_collapses_points_and_joins_ranges():
    assert format_span(0.0, 0.0, 5.0, 5.0) == "1970-01-01 00:00:00 UTC (t=5.0s)"
    assert format_span(0.0, 10.0, 5.0, 15.0).endswith("to 1970-01-01 00:00:10 UTC (t=15.0s)")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "a b\x00c", "..", ""])
def test_thumbnail_paths_never_leave_the_camera_folder(name, tmp_path):
    rel = thumbnail_relpath("lobby", name)
    assert rel.startswith("thumbnails/lobby/") and ".." not in rel.split("/")
    path = save_thumbnail(tmp_path, "lobby", name, b"\xff\xd8jpeg")
    assert (tmp_path / path).resolve().is_relative_to((tmp_path / "thumbnails").resolve())


def test_save_thumbnail_without_bytes_stores_nothing(tmp_path):
    assert save_thumbnail(tmp_path, "lobby", "x", None) is None
    assert not (tmp_path / "thumbnails").exists()


EVENTS = [ev(1, "person_enter", 3.0, 9.0, 0), ev(2, "motion", 20.0, 25.0, 1),
          ev(3, "tamper_blocked", 40.0, 41.0, 2)]


@pytest.mark.parametrize("question, expected", [
    ("When did a person enter?", {0: 1.0}),
    ("Was there any motion?", {1: 1.0}),
    ("Was the camera blocked or tampered with?", {2: 1.0}),
    ("What colour is the car?", {}),
])
def test_cv_events_boost_the_chunks_the_question_is_about(question, expected):
    assert boosts_for(question, EVENTS) == expected


@pytest.mark.parametrize("question, known, field", [
    (Question("ghost", "when?"), False, "camera"),
    (Question("lobby", ""), True, "question"),
    (Question("lobby", "x" * 1001), True, "question"),
    (Question("lobby", "when?", since=10.0, until=5.0), True, "until"),
    (Question("lobby", "when?", backend="llama"), True, "backend"),
])
def test_questions_refused_at_the_edge_name_the_field(question, known, field):
    with pytest.raises(QueryError) as err:
        validate_question(question, known)
    assert err.value.field == field and str(err.value).startswith(f"{field}: ")
    assert len(str(err.value)) < 200  # an oversized question is not echoed whole


def test_valid_question_passes():
    validate_question(Question("lobby", "when did a person enter?", since=1.0, until=2.0), True)


def test_llm_answer_maps_times_to_wall_clock_and_attaches_cv_evidence(tmp_path):
    """The engine's answer is scripted here: a tiny random checkpoint cannot be made to
    emit a time interval, and this test is about what the service does with one."""
    cfg = config_from_dict({"data_dir": str(tmp_path)})
    keyframe = save_thumbnail(tmp_path, "lobby", "chunk-00000002", b"\xff\xd8k")
    events = [ev(1, "person_enter", 3.0, 9.0, 0, thumb="thumbnails/lobby/p.jpg"), *EVENTS[1:]]
    asked = {}

    def llm_ask(camera, text, window, boosts):
        asked.update(camera=camera, window=window, boosts=boosts)
        return MemoryAnswer("From 4.0 to 8.0 seconds, and at 40 s.",
                            ((4.0, 8.0), (40.0, 40.0)), (0, 2),
                            ((0, "dense"), (2, "coarse")), {0: 0.9}, T0)

    q = Question("lobby", "When did a person enter?", since=T0, until=T0 + 60)
    answer = answer_llm(cfg, q, events, llm_ask)
    assert asked == {"camera": "lobby", "window": (T0, T0 + 60), "boosts": {0: 1.0}}
    first, second = answer.intervals
    assert (first.start, first.end, first.t_start) == (T0 + 4.0, T0 + 8.0, 4.0)
    assert first.thumbnail == "thumbnails/lobby/p.jpg"  # the overlapping CV event's
    assert second.thumbnail == keyframe  # no person there: the chunk's keyframe
    assert answer.evidence_event_ids == (1, 3)
    assert answer.chunks_used == ((0, "dense"), (2, "coarse"))
