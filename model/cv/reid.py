"""Re-identification: which person a confirmed track is, across tracks of one camera.

A track is one continuous sighting; a person who walks out and comes back, or whose track
broke anyway, gets a new track. "How many people were seen" is about people, so every
confirmed track is given a person: one already known whose appearance matches (a
re-entry, or a continuation), or a new one. `PersonGallery` keeps, per person, the
appearance descriptor (appearance.py) blended over the tracks that were them and when
they were last seen.

Two decisions per track: `identify` when it is confirmed (the start of its person_enter
event says who it is, from the one or two sightings so far) and `settle` when it ends
(with the appearance of the whole track, the decision its end emission records; a new
person made at confirmation that turns out to be someone seen before is folded back).
The rule, cautious on purpose: a wrong merge hides a person, a missed one only counts
someone twice.
- only people not in view at the same time are candidates (one person is not in two
  places): at confirmation those held by live tracks, at the end also those with a
  sighting overlapping the track's;
- the best candidate must look alike at least `min_similarity` and beat the second best
  by `margin` (among several people in dark coats, nobody in particular is re-identified);
- people unseen for longer than `memory_s` are forgotten (clothes are a weak key over
  hours, and the gallery stays bounded: at most `max_people`, the oldest dropped first).

Owns no tracks and no pixels; the analyzer calls it when a track is confirmed and when it
ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.cv.appearance import blend, similarity

MAX_SPANS = 32  # sightings remembered per person (for the overlap rule), newest kept


@dataclass
class Person:
    person_id: int
    feature: np.ndarray | None = field(repr=False)
    last_seen: float
    tracks: int = 1
    spans: list[tuple[float, float]] = field(default_factory=list)  # finished tracks

    def overlaps(self, t0: float, t1: float) -> bool:
        return any(a <= t1 and t0 <= b for a, b in self.spans)


@dataclass(frozen=True)
class Identity:
    person_id: int
    seen_before: bool  # re-identified: a person of an earlier track
    similarity: float | None  # to that person (None: a new person)


class PersonGallery:
    def __init__(self, min_similarity: float = 0.85, margin: float = 0.03,
                 memory_s: float = 600.0, feature_weight: float = 0.5,
                 max_people: int = 512) -> None:
        self.min_similarity = min_similarity
        self.margin = margin
        self.memory_s = memory_s
        self.feature_weight = feature_weight
        self.max_people = max_people
        self.people: dict[int, Person] = {}
        self.distinct = 0  # people since the start (forgotten ones included)
        self._next_id = 1

    def identify(self, feature: np.ndarray | None, t0: float, t: float,
                 in_view: set[int] | frozenset[int] = frozenset()) -> Identity:
        """The person of a track first seen at t0 and confirmed at t; `in_view`: person
        ids held by other live tracks (never candidates)."""
        self._forget(t, in_view)
        match = self._match(feature, [p for p in self.people.values()
                                      if p.person_id not in in_view
                                      and not p.overlaps(t0, t)])
        if match is not None:
            person = self.people[match[0]]
            person.tracks += 1
            person.last_seen = max(person.last_seen, t)
            return Identity(match[0], True, match[1])
        return Identity(self._add(feature, t), False, None)

    def settle(self, provisional: Identity, feature: np.ndarray | None, t0: float,
               t1: float, in_view: set[int] | frozenset[int] = frozenset()) -> Identity:
        """The final person of a track seen from t0 to t1 that was `provisional` at its
        confirmation; `in_view`: person ids of other live tracks seen before t1."""
        own = self.people.get(provisional.person_id)
        # A person made for this track alone is no candidate: it is what is being decided.
        alone = own is not None and not provisional.seen_before and own.tracks == 1
        others = [p for p in self.people.values()
                  if p.person_id not in in_view and not p.overlaps(t0, t1)
                  and not (alone and p is own)]
        match = self._match(feature, others)
        if own is not None and (match is None or match[0] != own.person_id) and not (
                alone and match is None):
            self._drop_track(own)  # this track was not `own` after all
        if match is not None:
            person, who = self.people[match[0]], Identity(match[0], True, match[1])
            if own is None or person is not own:
                person.tracks += 1
            person.feature = blend(person.feature, feature, self.feature_weight)
        elif alone:
            assert own is not None
            person, who = own, provisional
            person.feature = feature if feature is not None else person.feature
        else:
            pid = self._add(feature, t1)
            person, who = self.people[pid], Identity(pid, False, None)
        person.last_seen = max(person.last_seen, t1)
        person.spans = [*person.spans, (t0, t1)][-MAX_SPANS:]
        return who

    def _match(self, feature: np.ndarray | None, people: list[Person]
               ) -> tuple[int, float] | None:
        """The one candidate alike enough and clearly more alike than the next."""
        scored = sorted(((s, p.person_id) for p in people
                         if (s := similarity(feature, p.feature)) is not None), reverse=True)
        if not scored:
            return None
        best, pid = scored[0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        if best >= self.min_similarity and best - second >= self.margin:
            return pid, best
        return None

    def _drop_track(self, person: Person) -> None:
        """A track no longer counts for `person`; a person left with none is forgotten
        and no longer counted (it was a provisional new person)."""
        person.tracks -= 1
        if person.tracks <= 0:
            del self.people[person.person_id]
            self.distinct -= 1

    def _add(self, feature: np.ndarray | None, t: float) -> int:
        pid = self._next_id
        self._next_id += 1
        self.distinct += 1
        self.people[pid] = Person(pid, feature, t)
        while len(self.people) > self.max_people:
            oldest = min(self.people.values(), key=lambda p: p.last_seen)
            del self.people[oldest.person_id]
        return pid

    def _forget(self, t: float, in_view: set[int] | frozenset[int]) -> None:
        stale = [pid for pid, p in self.people.items()
                 if t - p.last_seen > self.memory_s and pid not in in_view]
        for pid in stale:
            del self.people[pid]
