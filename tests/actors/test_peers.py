"""PeerOutbox on a real (local, loopback) Ray: a fire-and-forget call to a named peer
that died for good before answering reaches the replacement of the same name (what the
memory actor's scores and the ingest actor's events rely on when the orchestrator
replaces a dead alert actor)."""

from __future__ import annotations

import time

import pytest

from actors.peers import PeerOutbox

pytestmark = pytest.mark.slow


class Sink:
    def __init__(self) -> None:
        self.items: list[int] = []

    def take(self, item: int) -> None:
        if item < 0:
            raise ValueError(f"item must be >= 0, got {item}")
        self.items.append(item)

    def got(self) -> list[int]:
        return self.items


def test_a_call_to_a_peer_dead_for_good_reaches_its_replacement(local_ray):
    import ray

    remote = ray.remote(num_cpus=0)(Sink)
    first = remote.options(name="outbox-sink").remote()
    out = PeerOutbox("outbox-sink")
    ray.get(out.send("take", 1), timeout=60)
    assert ray.get(first.got.remote(), timeout=60) == [1]

    ray.kill(first, no_restart=True)
    deadline = time.monotonic() + 60
    while True:  # the name is free once Ray has buried the first one
        try:
            second = remote.options(name="outbox-sink").remote()
            break
        except ValueError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    out.send("take", 2)  # through the handle kept for 10 s: the dead actor's
    out.send("take", -1)  # the peer's own error: counted, not resent
    while ray.get(second.got.remote(), timeout=60) != [2]:
        assert time.monotonic() < deadline, ray.get(second.got.remote(), timeout=60)
        time.sleep(0.2)
        out.check()
    out.check()
    assert out.resent >= 1 and out.failed == 1 and "item must be" in out.last_error
    assert ray.get(second.got.remote(), timeout=60) == [2]  # once, not twice
