"""parse_intervals: a table of answer phrasings (pure function, no fakes)."""

import pytest

from model.intervals import parse_intervals

CASES = [
    ("A person enters from 12.0 to 20.5 seconds.", [(12.0, 20.5)]),
    ("At 31 s a car stops.", [(31.0, 31.0)]),
    ("at 31s", [(31.0, 31.0)]),
    ("It happens between 1:02 and 1:10.", [(62.0, 70.0)]),
    ("Time 44.0s: someone falls.", [(44.0, 44.0)]),
    ("From 12s to 20s and again from 40 s to 52 s.", [(12.0, 20.0), (40.0, 52.0)]),
    ("12.5-15 seconds", [(12.5, 15.0)]),
    ("No one is visible in the video.", []),
    ("Two people walk in.", []),
    ("3 people from 10 to 14 seconds", [(10.0, 14.0)]),
    ("at 5 s and at 9 s", [(5.0, 5.0), (9.0, 9.0)]),
    ("around 45", [(45.0, 45.0)]),
    ("from 1 to 2 minutes", [(60.0, 120.0)]),
    ("between 0:01:02 and 0:01:10", [(62.0, 70.0)]),
    ("from 20 s to 12 s", [(12.0, 20.0)]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_intervals_reads_answer_phrasings(text, expected):
    assert parse_intervals(text) == expected
