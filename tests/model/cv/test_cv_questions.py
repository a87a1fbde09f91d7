"""Question parser table tests: phrasings -> intent (label, action, window) or Unsupported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from model.cv.questions import HELP_TEXT, QueryIntent, Unsupported, parse_question

NOW = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # a Monday evening


def _ts(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("question", "label", "action", "since", "until", "window"),
    [
        ("When did a person enter after 22:00?", "person", "enter", _ts(23, 22), None,
         "after 22:00"),
        ("When did someone arrive since 10pm?", "person", "enter", _ts(23, 22), None,
         "since 22:00"),
        ("Did anyone leave between 9 and 10?", "person", "leave", _ts(23, 9), _ts(23, 10),
         "between 09:00 and 10:00"),
        ("Was anybody there in the last hour?", "person", "present", _ts(23, 22, 30),
         NOW.timestamp(), "in the last hour"),
        ("How many people were seen today?", "person", "count", _ts(23, 0), NOW.timestamp(),
         "today"),
        ("How many visitors came in yesterday?", "person", "count", _ts(22, 0), _ts(23, 0),
         "yesterday"),
        ("when was the last person seen leaving", "person", "leave", None, None, ""),
        ("Who entered in the past 30 minutes?", "person", "enter", _ts(23, 23),
         NOW.timestamp(), "in the last 30 minutes"),
        ("Any motion between 22:00 and 01:00?", "motion", "list", _ts(23, 22),
         _ts(24, 1), "between 22:00 and 01:00"),
        ("Anything unusual since 22:00?", "anomaly", "list", _ts(23, 22), None, "since 22:00"),
        ("Was there any suspicious activity last night?", "anomaly", "list", _ts(22, 18),
         _ts(23, 6), "last night"),
        ("Was the camera blocked or blurred today?", "tamper", "list", _ts(23, 0),
         NOW.timestamp(), "today"),
        ("Has the camera moved?", "tamper", "list", None, None, ""),
        ("Did anyone loiter before 9am?", "loitering", "list", _ts(23, 0), _ts(23, 9),
         "before 09:00"),
        ("Was there a crowd around 11pm?", "crowd", "list", _ts(23, 22, 45), _ts(23, 23, 15),
         "around 23:00"),
        ("What happened after 23:00?", "any", "list", _ts(23, 23), None, "after 23:00"),
        ("Is someone there now?", "person", "present", NOW.timestamp() - 60, NOW.timestamp(),
         "right now"),
    ],
)
def test_phrasing_maps_to_intent(question, label, action, since, until, window):
    intent = parse_question(question, NOW.timestamp(), "UTC")
    assert isinstance(intent, QueryIntent), intent
    assert (intent.label, intent.action) == (label, action)
    assert (intent.since, intent.until, intent.window) == (since, until, window)


def test_anomaly_questions_include_alerts_and_only_anomaly_kinds():
    intent = parse_question("anything unusual since 22:00?", NOW.timestamp(), "UTC")
    assert intent.include_alerts
    assert "person_enter" not in intent.kinds and "motion" not in intent.kinds
    assert {"loitering", "crowd", "tamper_blocked"} <= set(intent.kinds)


def test_count_of_leavers_reads_leave_events():
    intent = parse_question("How many people left today?", NOW.timestamp(), "UTC")
    assert (intent.action, intent.kinds) == ("count", ("person_leave",))


def test_window_uses_operator_time_zone():
    """22:00 in Paris is 21:00 UTC in November."""
    intent = parse_question("Anyone enter after 22:00?", NOW.timestamp(), "Europe/Paris")
    assert intent.since == datetime(2026, 11, 23, 22, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    assert intent.tz == "Europe/Paris"


def test_time_after_now_means_previous_day():
    morning = NOW.replace(hour=8).timestamp()
    intent = parse_question("did a person enter after 22:00", morning, "UTC")
    assert intent.since == _ts(22, 22)
    assert datetime.fromtimestamp(intent.since, UTC) < NOW - timedelta(hours=10)


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("What colour is the car?", "open_question"),
        ("Was the man wearing a red jacket?", "open_question"),
        ("Is anyone fighting or lying on the floor?", "open_question"),
        ("Did a dog enter after 22:00?", "open_question"),
        ("Describe the scene", "open_question"),
        ("Is it raining?", "outside_vocabulary"),
        ("Summarise the weather forecast", "outside_vocabulary"),
        ("Did a person enter after 25:00?", "bad_window"),
    ],
)
def test_unsupported_questions_explain_instead_of_guessing(question, reason):
    result = parse_question(question, NOW.timestamp(), "UTC")
    assert isinstance(result, Unsupported), result
    assert result.reason == reason
    assert "videoxl2" in result.text and HELP_TEXT in result.text
    assert result.question == question


@pytest.mark.parametrize(
    ("text", "tz", "field"),
    [("", "UTC", "question"), ("   ", "UTC", "question"), ("x" * 1001, "UTC", "question"),
     ("anyone today?", "Mars/Olympus", "tz")],
)
def test_bad_question_input_names_the_field(text, tz, field):
    with pytest.raises(ValueError, match=field):
        parse_question(text, NOW.timestamp(), tz)


@pytest.mark.parametrize(("question", "since", "until", "window"), [
    ("When did a person enter between 30 and 60 s?", 30.0, 60.0, "between 30 s and 60 s"),
    ("Anyone there between 30 s and 90 seconds?", 30.0, 90.0, "between 30 s and 90 s"),
    ("Was anyone there after 45 seconds?", 45.0, None, "after 45 s"),
    ("Any motion in the first 20 s?", 0.0, 20.0, "in the first 20 s"),
])
def test_stream_second_windows_are_read_as_seconds_of_the_footage(question, since, until,
                                                                  window):
    intent = parse_question(question, NOW.timestamp(), "UTC")
    assert isinstance(intent, QueryIntent) and intent.stream_window
    assert (intent.since, intent.until, intent.window) == (since, until, window)


def test_a_time_of_day_still_to_come_is_read_as_yesterday_and_says_so():
    evening = datetime(2026, 11, 23, 21, 0, tzinfo=UTC).timestamp()
    intent = parse_question("Did anyone enter after 23:00?", evening, "UTC")
    assert intent.window == "after 23:00 yesterday" and intent.since == _ts(22, 23)
    today = parse_question("Did anyone enter after 20:00?", evening, "UTC")
    assert today.window == "after 20:00" and today.since == _ts(23, 20)


def test_a_stream_window_that_ends_before_it_starts_is_refused():
    out = parse_question("Did anyone enter between 60 and 30 s?", NOW.timestamp(), "UTC")
    assert isinstance(out, Unsupported) and out.reason == "bad_window" and "30 s" in out.text
