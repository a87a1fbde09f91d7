"""What operators type: time words (days, dates, parts of a day, stream seconds, DST) ->
windows, first/last picks, and the grammar of the answers. A fixed "now" and zone
(Europe/Berlin) make every window exact; Berlin's clocks went forward on 29 March 2026
and go back on 25 October 2026."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.cv import answer_from_events
from model.cv.questions import HELP_TEXT, QueryIntent, Unsupported, parse_question

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 31, 10, 15, tzinfo=BERLIN)  # Tuesday, two days after spring DST
AUTUMN = datetime(2026, 10, 26, 9, 0, tzinfo=BERLIN)  # Monday, the day after autumn DST


def b(month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def ask(question: str, now: datetime = NOW, **kw) -> QueryIntent | Unsupported:
    return parse_question(question, now.timestamp(), "Europe/Berlin", **kw)


T = NOW.timestamp()


@pytest.mark.parametrize(("question", "since", "until", "window"), [
    # days, weekdays and dates in the camera's zone
    ("Anyone on Monday?", b(3, 30), b(3, 31), "yesterday"),
    ("Anyone on Tuesday?", b(3, 31), T, "today"),  # today is Tuesday: up to now
    ("Was anyone there last Tuesday?", b(3, 24), b(3, 25), "on Tue 24 Mar"),
    ("Any motion on Sunday?", b(3, 29), b(3, 30), "on Sun 29 Mar"),  # a 23-hour day
    ("Anyone the day before yesterday?", b(3, 29), b(3, 30), "on Sun 29 Mar"),
    ("Anyone on 3 March?", b(3, 3), b(3, 4), "on Tue 3 Mar"),
    ("Anyone on March 3rd 2026?", b(3, 3), b(3, 4), "on Tue 3 Mar"),
    ("Anyone on the 3rd of March?", b(3, 3), b(3, 4), "on Tue 3 Mar"),
    ("Anyone on 2026-03-29?", b(3, 29), b(3, 30), "on Sun 29 Mar"),
    ("Anyone on 30 November?", datetime(2025, 11, 30, tzinfo=BERLIN).timestamp(),
     datetime(2025, 12, 1, tzinfo=BERLIN).timestamp(), "on Sun 30 Nov 2025"),
    # parts of a day
    ("Anyone yesterday evening?", b(3, 30, 18), b(3, 31), "yesterday evening"),
    ("Anyone this morning?", b(3, 31, 6), T, "this morning"),
    ("Anyone on Monday morning?", b(3, 30, 6), b(3, 30, 12), "yesterday morning"),
    ("Anyone on Saturday night?", b(3, 28, 18), b(3, 29, 6),  # 11 h: the clocks went forward
     "on the night of Sat 28 Mar"),
    ("Anyone in the evening?", b(3, 30, 18), b(3, 31), "yesterday evening"),
    # a day and a time of day
    ("Did anyone enter since Friday 18:00?", b(3, 27, 18), None, "since 18:00 on Fri 27 Mar"),
    ("Did anyone enter since Friday?", b(3, 27), None, "since Fri 27 Mar"),
    ("Anyone before Monday?", None, b(3, 30), "before Mon 30 Mar"),
    ("Anyone yesterday after 22:00?", b(3, 30, 22), b(3, 31), "after 22:00 yesterday"),
    ("Anyone on Monday between 9 and 10?", b(3, 30, 9), b(3, 30, 10),
     "between 09:00 and 10:00 yesterday"),
    ("Anyone at 3pm on Monday?", b(3, 30, 14, 45), b(3, 30, 15, 15), "around 15:00 yesterday"),
    ("Anyone before 9am on Sunday?", b(3, 29), b(3, 29, 9), "before 09:00 on Sun 29 Mar"),
    # a time in the DST gap (02:00-03:00 did not exist on 29 March) is the gap's end
    ("Anyone between 2:30 and 4:00 on 29 March?", b(3, 29, 3), b(3, 29, 4),
     "between 02:30 and 04:00 on Sun 29 Mar"),
    # clock times without a day, as before
    ("Anyone since 22:00 until now?", b(3, 30, 22), None, "since 22:00 yesterday"),
    ("Anyone from 9 o'clock?", b(3, 31, 9), None, "since 09:00"),
    ("Anyone before 1:30?", b(3, 31), b(3, 31, 1, 30), "before 01:30"),  # a clock time
    ("Were there about 5 people after 22:00?", b(3, 30, 22), None, "after 22:00 yesterday"),
    # relative
    ("Anyone in the last 10 minutes?", T - 600, T, "in the last 10 minutes"),
    ("Anyone in the past 24 hours?", T - 86400, T, "in the last 24 hours"),
])
def test_day_and_time_words_resolve_in_the_camera_zone(question, since, until, window):
    intent = ask(question)
    assert isinstance(intent, QueryIntent), intent
    assert not intent.stream_window
    assert (intent.since, intent.until, intent.window) == (since, until, window)


def test_days_are_calendar_days_across_the_autumn_change():
    intent = ask("How many people were seen yesterday?", AUTUMN)
    assert intent.until - intent.since == 25 * 3600
    night = ask("Anyone last night?", AUTUMN)
    assert (night.since, night.until) == (b(10, 25, 18), b(10, 26, 6))  # 13 real hours
    repeated = ask("Anyone at 2:30 yesterday?", AUTUMN)  # 02:30 came twice: the first one
    first_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()
    assert repeated.since + 15 * 60 == first_0230


def test_a_plain_weekday_whose_time_is_still_to_come_means_last_week():
    friday = datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)
    assert ask("Anyone since Friday 18:00?", friday).since == b(3, 20, 18)
    assert ask("Anyone on Friday?", friday).since == b(3, 27)  # today, it has begun


@pytest.mark.parametrize(("question", "since", "until", "window"), [
    ("When did a person enter between 30 and 60 s?", 30.0, 60.0, "between 30 s and 60 s"),
    ("Anyone between 30s and 1 min?", 30.0, 60.0, "between 30 s and 60 s"),
    ("Anyone between 1 min 30 s and 2 minutes?", 90.0, 120.0, "between 90 s and 120 s"),
    ("Anyone between 0:30 and 1:30 min?", 30.0, 90.0, "between 30 s and 90 s"),
    ("Any motion in the first 20 seconds?", 0.0, 20.0, "in the first 20 s"),
    ("Any motion in the first minute?", 0.0, 60.0, "in the first minute"),
    ("Anyone after 45 s?", 45.0, None, "after 45 s"),
    ("Anyone after t=90?", 90.0, None, "after 90 s"),
    ("Anyone before 1:30 min?", 0.0, 90.0, "before 90 s"),
    ("Anyone after 2:05 into the clip?", 125.0, None, "after 125 s"),
])
def test_stream_second_windows(question, since, until, window):
    intent = ask(question)
    assert isinstance(intent, QueryIntent) and intent.stream_window, intent
    assert (intent.since, intent.until, intent.window) == (since, until, window)


@pytest.mark.parametrize(("question", "since", "until", "window"), [
    ("Anyone before 1:30?", 0.0, 90.0, "before 90 s"),  # m:ss when there is no clock
    ("Anyone between 1:00 and 2:30?", 60.0, 150.0, "between 60 s and 150 s"),
    ("Anyone after 1:02:03?", 3723.0, None, "after 3723 s"),
    ("Anyone in the last 2 minutes?", 480.0, 600.0, "in the last 2 minutes of the footage"),
    ("Anyone in the last 10 s of the video?", 590.0, 600.0,
     "in the last 10 seconds of the footage"),
])
def test_footage_without_a_wall_clock_reads_times_as_stream_time(question, since, until,
                                                                 window):
    intent = ask(question, clock=False, stream_end=600.0)
    assert isinstance(intent, QueryIntent) and intent.stream_window, intent
    assert (intent.since, intent.until, intent.window) == (since, until, window)


def test_in_the_last_minutes_means_the_newest_footage_when_it_is_known():
    newest = T - 7200  # the camera has been down for two hours
    intent = ask("Anyone in the last 10 minutes?", newest_wall=newest)
    assert (intent.since, intent.until) == (newest - 600, newest)
    assert intent.window == "in the last 10 minutes of footage (up to 08:15)"
    assert ask("Anyone in the last 10 minutes?", newest_wall=T + 50).until == T


@pytest.mark.parametrize(("question", "kw", "words"), [
    ("Anyone between 60 and 30 s?", {}, "30 s is before 60 s in 'between 60 and 30 s'"),
    ("Anyone on 30 February?", {}, "'on 30 february' is not a date"),
    ("Anyone on 2026-11-30?", {}, "'on 2026-11-30' has not begun yet"),
    ("Anyone this evening?", {}, "'this evening' has not begun yet"),
    ("Anyone today after 20:00?", {}, "'today after 20:00' has not begun yet"),
    ("Anyone this Friday?", {}, "'this friday' has not come yet"),
    ("Anyone tomorrow?", {}, "'tomorrow' is in the future"),
    ("Anyone next Monday?", {}, "'next monday' is in the future"),
    ("Anyone yesterday and today?", {}, "cannot read 'today'"),
    ("Anyone in the last hour today?", {}, "cannot combine 'in the last hour' with 'today'"),
    ("Anyone yesterday evening after 20:00?", {}, "cannot combine 'yesterday evening'"),
    ("Anyone at 9.30?", {}, "cannot read 'at 9.30'"),
    ("Anyone in 2 minutes?", {}, "cannot read '2 minutes'"),
    ("Anyone this week?", {}, "cannot read 'week'"),
    ("Anyone 10 minutes ago?", {}, "cannot read '10 minutes'"),
    ("Anyone at t=90?", {}, "cannot read 't=90'"),
    ("Anyone between 1:75 and 2 min?", {}, "'1:75' is not a stream time"),
    ("Anyone after 25:00?", {}, "'25:00' is not a valid time"),
    ("Anyone in the last 10 s of the video?", {}, "needs the end of the footage"),
    ("Anyone today?", {"clock": False}, "'today' needs a wall clock"),
    ("Anyone after 45?", {"clock": False}, "'45' needs a unit"),
    ("Anyone after 10pm?", {"clock": False}, "no wall clock"),
])
def test_unreadable_or_impossible_window_words_are_refused_naming_them(question, kw, words):
    out = ask(question, **kw)
    assert isinstance(out, Unsupported), out
    assert out.reason == "bad_window" and words in out.text, out.text
    assert HELP_TEXT in out.text


@pytest.mark.parametrize(("question", "action", "pick"), [
    ("When did the last person leave?", "leave", "last"),
    ("The last time someone entered?", "enter", "last"),
    ("When did the first person enter today?", "enter", "first"),
    ("When was the person first seen?", "enter", "first"),
    ("When was someone last seen?", "leave", "last"),
    ("When was the most recent motion?", "list", "last"),
    ("When did the first 3 people enter?", "enter", ""),  # three of them, not one
    ("How many people entered last Tuesday?", "count", ""),  # a day, not a pick
    ("Anyone last night?", "present", ""),
    ("When did a person enter in the first 20 s?", "enter", ""),
])
def test_first_and_last(question, action, pick):
    intent = ask(question)
    assert isinstance(intent, QueryIntent), intent
    assert (intent.action, intent.pick) == (action, pick)


W0 = b(3, 31, 8)  # stream origin: 08:00 on Tuesday


def row(kind, t0, t1, rid, wall=True):
    return SimpleNamespace(kind=kind, t_start=t0, t_end=t1, confidence=0.9, id=rid,
                           wall_start=W0 + t0 if wall else None,
                           wall_end=W0 + t1 if wall and t1 is not None else None,
                           thumbnail=f"thumbs/{rid}.jpg")


EVENTS = [row("person_enter", 10.0, 40.0, 1), row("person_leave", 40.0, 40.0, 2),
          row("person_enter", 600.0, 700.0, 3), row("person_leave", 700.0, 700.0, 4),
          row("person_enter", 900.0, 950.0, 5), row("person_leave", 950.0, 950.0, 6),
          row("motion", 5.0, 60.0, 7), row("motion", 880.0, 960.0, 8)]


def answer(question, events=EVENTS, **kw):
    intent = ask(question, **kw)
    assert isinstance(intent, QueryIntent), intent
    return answer_from_events(intent, events)


@pytest.mark.parametrize(("question", "ids", "text"), [
    ("When did the last person leave?", [6],
     "The last person left at Tue 08:15:50 (t=950.0s) (last of 3)."),
    ("When did the first person leave?", [2],
     "The first person left at Tue 08:00:40 (t=40.0s) (first of 3)."),
    ("The last time someone entered?", [5],
     "The last person entered at Tue 08:15:00 (t=900.0s) (last of 3)."),
    ("When did the last person enter before 08:05?", [1],
     "The last person entered before 08:05 at Tue 08:00:10 (t=10.0s)."),  # the only one
    ("When was the last motion?", [8],
     "The last motion: motion Tue 08:14:40 to Tue 08:16:00 (t=880.0-960.0s) (last of 2)."),
    ("When did the last person leave yesterday?", [], "No person left yesterday."),
])
def test_first_and_last_pick_the_earliest_or_latest_match(question, ids, text):
    ans = answer(question)
    assert [iv.event_id for iv in ans.intervals] == ids
    assert ans.text == text


@pytest.mark.parametrize(("question", "text"), [
    ("Was anyone there between 1 and 5 s?", "No person was seen between 1 s and 5 s."),
    ("Was anyone there in the first 100 s?",
     "1 person was seen in the first 100 s: Tue 08:00:10 to Tue 08:00:40 (t=10.0-40.0s)."),
    ("Was anyone there after 500 s?", "2 people were seen after 500 s: Tue 08:10:00 to "
     "Tue 08:11:40 (t=600.0-700.0s); Tue 08:15:00 to Tue 08:15:50 (t=900.0-950.0s)."),
    ("How many people were seen between 1 and 5 s?", "No person was seen between 1 s and 5 s."),
    ("How many people were seen in the first 100 s?",
     "1 person was seen in the first 100 s (at Tue 08:00:10 (t=10.0s))."),
    ("How many people were seen after 500 s?",
     "2 people were seen after 500 s (first at Tue 08:10:00 (t=600.0s))."),
    ("How many people entered between 1 and 5 s?", "No person entered between 1 s and 5 s."),
    ("How many people left after 500 s?",
     "2 people left after 500 s (first at Tue 08:11:40 (t=700.0s))."),
    ("Did anyone enter between 1 and 5 s?", "No person entered between 1 s and 5 s."),
    ("When did people enter after 500 s?",
     "2 people entered after 500 s: at Tue 08:10:00 (t=600.0s); Tue 08:15:00 (t=900.0s)."),
])
def test_answers_agree_in_number(question, text):
    assert answer(question).text == text


def test_footage_without_a_wall_clock_shows_stream_seconds_only():
    no_wall = [row("person_enter", 12.0, 30.0, 1, wall=False),
               row("person_enter", 50.0, 55.0, 2, wall=False)]
    ans = answer("When did a person enter after 10 s?", no_wall)
    assert ans.text == "2 people entered after 10 s: at t=12.0s; t=50.0s."
    assert ans.intervals[0].wall_start is None
    # Such events cannot be placed in a clock window, so they are not guessed into one.
    assert answer("When did a person enter today?", no_wall).intervals == ()
    clockless = answer("When did the last person enter before 1:00?", EVENTS, clock=False)
    assert clockless.text == "The last person entered before 60 s at t=10.0s."


def test_times_older_than_a_week_carry_their_date():
    later = datetime(2026, 4, 9, 12, 0, tzinfo=BERLIN)
    ans = answer("When did the first person enter?", EVENTS, now=later)
    assert "at Tue 2026-03-31 08:00:10 (t=10.0s)" in ans.text


# ---- properties ------------------------------------------------------------------------

DAY_WORDS = ["", "today", "yesterday", "on monday", "last tuesday", "on sunday", "this morning",
             "yesterday evening", "tonight", "last night", "on 29 march", "on 2026-10-25",
             "on 25 october", "friday night", "since friday", "before monday",
             "the day before yesterday", "in the evening", "at night"]
TIME_WORDS = ["", "after 22:00", "since 10pm", "before 9am", "between 9 and 10",
              "between 22:00 and 02:00", "between 2:00 and 3:00", "between 2:30 and 2:15",
              "around 2:30", "at noon", "since 18:00", "before 1:30", "at midnight",
              "in the last hour", "in the past 30 minutes", "between 30 and 60 s",
              "after 45 s", "in the first 20 seconds", "before 1:30 min", "right now",
              "between 1:00 and 0:30 min", "after 23:59"]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kathmandu"]
# Nows spread over both 2026 DST changes of Europe and the US, and a whole year.
NOWS = st.one_of(
    st.floats(min_value=b(3, 27), max_value=b(4, 1)),
    st.floats(min_value=b(10, 23), max_value=b(10, 28)),
    st.floats(min_value=b(1, 1), max_value=b(12, 31)),
)


@settings(max_examples=800, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(DAY_WORDS), st.sampled_from(TIME_WORDS), st.booleans(),
       st.sampled_from(ZONES), NOWS, st.sampled_from(["enter", "leave", "there"]))
def test_any_window_resolved_is_finite_ordered_and_not_in_the_future(day, tod, swap, zone,
                                                                      now, verb):
    words = f"{tod} {day}" if swap else f"{day} {tod}"
    question = f"did anyone {verb} {words}?"
    out = parse_question(question, now, zone)
    assert isinstance(out, QueryIntent | Unsupported)
    if isinstance(out, Unsupported):
        assert out.reason in ("bad_window", "outside_vocabulary") and out.text
        return
    for value in (out.since, out.until):
        assert value is None or math.isfinite(value), (question, out)
    if out.since is not None and out.until is not None:
        assert out.since <= out.until, (question, out)
    if out.stream_window:
        assert out.since is None or out.since >= 0
    elif out.since is not None:
        assert out.since <= now, (question, out)
    assert bool(out.window) == bool(words.strip()), (question, out)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59),
       st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59),
       st.sampled_from(ZONES), NOWS)
def test_between_two_clock_times_is_never_reversed(h0, m0, h1, m1, zone, now):
    out = parse_question(f"anyone between {h0}:{m0:02d} and {h1}:{m1:02d}?", now, zone)
    assert isinstance(out, QueryIntent), out
    assert out.since <= out.until <= out.since + 25 * 3600 + 1
