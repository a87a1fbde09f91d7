"""What a camera shows right now, from its CV events: people present, their count, motion.

A plain object fed the event emissions the alert actor receives (model/cv/events.py: an
event is emitted when it starts and again when it ends, with the same start time). A
`person_enter` that is open means a tracked person is in view; its end, or the
`person_leave` of that track, means they left. An open `motion` event means motion. It
publishes nothing (pipeline/alerts/mqtt.py turns `ActivityState` into MQTT state topics).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.messages import Event


@dataclass(frozen=True)
class ActivityState:
    people: int = 0
    motion: bool = False

    @property
    def person(self) -> bool:
        return self.people > 0


class CameraActivity:
    def __init__(self) -> None:
        self._tracks: set[int] = set()  # person tracks in view
        self._motion: set[float] = set()  # start times of open motion events

    @property
    def state(self) -> ActivityState:
        return ActivityState(len(self._tracks), bool(self._motion))

    def apply(self, events: Iterable[Event]) -> bool:
        """Fold events in, in order; True when the state changed."""
        before = self.state
        for ev in events:
            if ev.kind == "person_enter" and ev.track_id is not None:
                if ev.t_end is None:
                    self._tracks.add(ev.track_id)
                else:
                    self._tracks.discard(ev.track_id)
            elif ev.kind == "person_leave" and ev.track_id is not None:
                self._tracks.discard(ev.track_id)
            elif ev.kind == "motion":
                if ev.t_end is None:
                    self._motion.add(ev.t_start)
                else:
                    self._motion.discard(ev.t_start)
        return self.state != before

    def reset(self) -> bool:
        """The stream stopped (finished, failed, restarted): nobody is known to be there."""
        changed = self.state != ActivityState()
        self._tracks.clear()
        self._motion.clear()
        return changed
