"""Answer composition from event rows and alerts: window filtering, readable times, evidence.

Rows are SimpleNamespace objects shaped like database rows (the function must not depend
on storage); the formatter is the caller's, as in the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from model.cv import CVEvent, answer_from_events, parse_question

W0 = datetime(2026, 11, 23, 21, 0, tzinfo=UTC).timestamp()  # stream origin: 21:00
NOW = W0 + 2.5 * 3600  # 23:30 the same day


def row(kind, t0, t1, rid, conf=0.9, thumb=None):
    return SimpleNamespace(kind=kind, t_start=t0, t_end=t1, wall_start=W0 + t0,
                           wall_end=None if t1 is None else W0 + t1, confidence=conf,
                           thumbnail=thumb or f"thumbs/{rid}.jpg", id=rid)


EVENTS = [
    row("person_enter", 600.0, 700.0, 1),  # 21:10
    row("person_leave", 700.0, 700.0, 2),
    row("person_enter", 3900.0, 4000.0, 3),  # 22:05
    row("person_leave", 4000.0, 4000.0, 4),
    row("person_enter", 4500.0, None, 5),  # 22:15, still present
    row("motion", 590.0, 720.0, 6),
    row("loitering", 4500.0, None, 7),
    row("tamper_blocked", 5000.0, 5030.0, 8),
]
ALERTS = [SimpleNamespace(rule="fight", kind="llm_yes", message="possible fight",
                          wall_time=W0 + 4200.0, t=4200.0, score=0.8,
                          thumbnail="thumbs/a9.jpg", alert_id=9)]


def hhmm(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M")


def ask(question: str, fmt=hhmm):
    intent = parse_question(question, NOW, "UTC")
    return answer_from_events(intent, EVENTS, ALERTS, fmt=fmt)


def test_enter_after_time_lists_only_entries_in_window_with_evidence():
    ans = ask("When did a person enter after 22:00?")
    assert [iv.event_id for iv in ans.intervals] == [3, 5]
    assert ans.text.startswith("2 people entered after 22:00: at 22:05 (t=3900.0s); 22:15")
    first = ans.intervals[0]
    assert (first.t_start, first.t_end) == (3900.0, 4000.0)
    assert (first.wall_start, first.wall_end) == (W0 + 3900.0, W0 + 4000.0)
    assert first.thumbnail == "thumbs/3.jpg" and first.confidence == 0.9


def test_single_entry_reads_as_a_sentence():
    ans = ask("When did someone come in between 21:00 and 22:00?")
    assert ans.text == "A person entered between 21:00 and 22:00 at 21:10 (t=600.0s)."


def test_no_match_says_so_with_the_window():
    ans = ask("Did anyone leave in the last 30 minutes?")
    assert ans.intervals == () and ans.text == "No person left in the last 30 minutes."


def test_presence_overlaps_window_and_open_events_count():
    ans = ask("Was anyone there after 22:10?")
    assert [iv.event_id for iv in ans.intervals] == [5]
    assert "22:15" in ans.text


def test_person_still_in_view_is_present_right_now():
    ans = ask("Is anyone there now?")
    assert [iv.event_id for iv in ans.intervals] == [5]
    assert ans.intervals[0].ongoing
    assert "from 22:15 (t=4500.0s), still going on" in ans.text


def test_count_counts_distinct_people():
    assert ask("How many people entered today?").text.startswith("3 people entered today")
    assert ask("How many people left today?").text.startswith("2 people left today")


def test_anomaly_question_lists_anomaly_events_and_alerts_of_window():
    ans = ask("Anything unusual since 22:00?")
    labels = [iv.label for iv in ans.intervals]
    assert labels == ["alert:fight", "loitering", "tamper_blocked"]
    alert = ans.intervals[0]
    assert alert.is_alert and alert.alert_id == 9 and alert.thumbnail == "thumbs/a9.jpg"
    assert alert.event_id is None, "alert ids never pose as event ids in evidence lists"
    assert "camera view blocked 22:23 to 22:23" in ans.text
    assert "person" not in ans.text.split(":")[0]


def test_nothing_unusual_is_an_explicit_answer():
    ans = ask("Anything unusual between 21:00 and 21:30?")
    assert ans.intervals == () and ans.text == "No unusual events or alerts between 21:00 and 21:30."


def test_cvevents_from_the_analyzer_are_accepted_directly():
    ev = CVEvent("person_enter", 20.0, 25.0, track_id=1, confidence=0.8,
                 thumbnail_jpeg=b"\xff\xd8jpeg", key="person_enter:1",
                 wall_start=W0 + 20.0, wall_end=W0 + 25.0)
    intent = parse_question("when did a person enter?", NOW, "UTC")
    ans = answer_from_events(intent, [ev])
    assert ans.intervals[0].thumbnail == b"\xff\xd8jpeg"
    assert ans.intervals[0].event_id == "person_enter:1"
    # Default formatter: the camera's zone, weekday and time within the last six days
    # (it used to write "2026-11-23 21:00:20"; the weekday form is what operators read).
    assert "Mon 21:00:20 (t=20.0s)" in ans.text
    older = parse_question("when did a person enter?", NOW + 9 * 86400, "UTC")
    assert "Mon 2026-11-23 21:00:20 (t=20.0s)" in answer_from_events(older, [ev]).text


@pytest.mark.parametrize("tz,expected", [("UTC", "21:10:00"), ("Asia/Tokyo", "06:10:00")])
def test_default_formatter_uses_intent_time_zone(tz, expected):
    intent = parse_question("when did a person enter?", NOW, tz)
    assert expected in answer_from_events(intent, EVENTS[:1]).text


def test_people_entering_together_are_one_moment_with_a_head_count():
    rows = [row("person_enter", 20.0, 30.0, i) for i in (1, 2, 3)] + [
        row("person_enter", 45.0, 50.0, 4)]
    intent = parse_question("when did people enter?", NOW, "UTC")
    ans = answer_from_events(intent, rows, fmt=hhmm)
    assert ans.text == "4 people entered: at 21:00 (t=20.0s) (3 people); 21:00 (t=45.0s)."
    assert len(ans.intervals) == 4, "every person keeps its own interval and thumbnail"


def test_people_in_view_in_the_first_frame_are_not_entries_but_were_seen():
    rows = [row("person_enter", 0.0, 30.0, i) for i in (1, 2)] + [
        row("person_enter", 45.0, 50.0, 3)]
    for r in rows[:2]:
        r.details = {"in_view_at_start": True}
    entered = answer_from_events(parse_question("when did people enter?", NOW, "UTC"), rows,
                                 fmt=hhmm)
    assert entered.text == ("A person entered at 21:00 (t=45.0s). "
                            "2 people were already in view at the start.")
    assert [i.event_id for i in entered.intervals] == [3]
    counted = answer_from_events(parse_question("how many people entered?", NOW, "UTC"),
                                 rows, fmt=hhmm)
    assert counted.text.startswith("1 person entered") and "already in view" in counted.text
    seen = answer_from_events(parse_question("how many people were seen?", NOW, "UTC"), rows,
                              fmt=hhmm)
    assert seen.text.startswith("3 people were seen") and len(seen.intervals) == 3


@pytest.mark.parametrize(("question", "ids"), [
    ("When did a person enter between 3000 and 4200 s?", [3]),
    ("When did a person enter after 4000 seconds?", [5]),
    ("When did a person enter in the first 1000 s?", [1]),
])
def test_stream_second_windows_select_by_the_footages_own_time(question, ids):
    assert [iv.event_id for iv in ask(question).intervals] == ids


def test_seen_counts_people_and_entered_counts_entries_of_a_person_who_came_back():
    """Three sightings, two of them one person (re-identified, details person_id): two
    people were seen, three entries happened."""
    rows = [row("person_enter", t0, t0 + 20.0, i) for i, t0 in ((1, 10.0), (2, 40.0),
                                                                 (3, 70.0))]
    for r, person in zip(rows, (7, 8, 7), strict=True):
        r.details = {"person_id": person, "reentry": r.id == 3}
    seen = answer_from_events(parse_question("how many people were seen?", NOW, "UTC"),
                              rows, fmt=hhmm)
    assert seen.text.startswith("2 people were seen"), seen.text
    entered = answer_from_events(parse_question("how many people entered?", NOW, "UTC"),
                                 rows, fmt=hhmm)
    assert entered.text.startswith("2 people entered 3 times (first at "), entered.text
    when = answer_from_events(parse_question("when did people enter?", NOW, "UTC"), rows,
                              fmt=hhmm)
    assert when.text.startswith("2 people entered 3 times: at 21:00 (t=10.0s); "), when.text
    assert len(when.intervals) == 3
    listed = answer_from_events(parse_question("was anyone seen?", NOW, "UTC"), rows,
                                fmt=hhmm)
    assert listed.text.startswith("2 people were seen, 3 times in view"), listed.text
    assert len(listed.intervals) == 3
