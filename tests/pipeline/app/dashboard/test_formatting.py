"""The dashboard's pure helpers: readable times in the camera's zone and the parts and
memory it reads from the service's health record (no browser)."""

from __future__ import annotations

import pytest

from pipeline.app.dashboard.overview import health_parts, memory_by_camera
from pipeline.app.dashboard.timefmt import local_time, relative_time

T = 1_796_120_601.0  # Tue 2026-12-01 10:23:21 UTC


@pytest.mark.parametrize("tz,now,text", [
    ("UTC", T + 60, "Tue 10:23:21"),
    ("Europe/Paris", T + 60, "Tue 11:23:21"),
    ("America/New_York", T + 60, "Tue 05:23:21"),
    ("UTC", T + 8 * 86400, "Tue 1 Dec 10:23:21"),  # over six days away: the date too
    ("No/Such_Zone", T, "Tue 10:23:21"),  # an unknown zone falls back to UTC
])
def test_local_time_is_the_weekday_and_time_in_the_cameras_zone(tz, now, text):
    assert local_time(T, tz, now=now) == text


@pytest.mark.parametrize("delta,text", [(2, "just now"), (42, "42 s ago"), (150, "2 min ago"),
                                        (3 * 3600 + 5, "3 h ago"), (4 * 86400, "4 d ago"),
                                        (-120, "in 2 min")])
def test_relative_time(delta, text):
    assert relative_time(T, now=T + delta) == text


HEALTH = {"ok": False, "database": {"ok": True, "url": "sqlite:///x.db"}, "query_backend": True,
          "service": {"alerts": False, "alert_rule_errors": ["r1: unknown zone 'dock'"],
                      "memory": {"local/cpu": True}, "cameras": {"lobby": True},
                      "placement": {"lobby": "local/cpu"},
                      "memory_stats": {"local/cpu": {
                          "loop": {"alive": True, "steps": 7, "failures": 0},
                          "cv": {"lobby": {"chunks": 3}},
                          "engine": {"cameras": {"gate": {"chunks": 12, "pending": 1,
                                                          "dropped": 2}}}}}}}


def test_health_parts_name_every_part_with_its_state():
    parts = {p.name: (p.ok, p.detail) for p in health_parts(HEALTH)}
    assert parts["database"] == (True, "sqlite:///x.db")
    assert parts["alert relay"][0] is False
    assert parts["alert rules"] == (False, "r1: unknown zone 'dock'")
    assert parts["memory local/cpu"] == (True, "7 steps, 0 failures")
    assert parts["ingest lobby"] == (True, "memory on local/cpu")
    down = health_parts({"database": {"ok": True}, "query_backend": False,
                         "service": {"error": "RayActorError: gone"}})
    assert [(p.name, p.ok) for p in down] == [("database", True), ("query backend", False),
                                              ("service", False)]


def test_memory_by_camera_reads_both_backends_and_tolerates_no_service():
    assert memory_by_camera(HEALTH) == {
        "lobby": {"slot": "local/cpu", "chunks": 3},
        "gate": {"slot": "local/cpu", "chunks": 12, "pending": 1, "dropped": 2}}
    assert memory_by_camera({"ok": True}) == {}
