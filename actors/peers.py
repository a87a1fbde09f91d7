"""Finding peer actors by name (the orchestrator names memory and alert actors).

Actor shells pass names, not handles, to one another: handles in constructor arguments
live in the object store, and Ray cannot restart an actor whose arguments were lost; a
name also finds the replacement of a peer that died for good.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

_HANDLES: dict[str, tuple[float, Any]] = {}
TTL_S = 10.0  # a replaced peer is found again within this long


def peer(name: str) -> Any:
    """The live actor named `name` in this job's namespace (raises ValueError if none).
    The handle is kept for TTL_S: a lookup is a round trip to Ray's control store, and
    every chunk of every camera sends through a peer (128 cameras: 8 lookups a second
    from as many processes). A restarted actor keeps its handle valid; a replaced one
    (a new actor of the same name) is looked up again once the TTL passed."""
    import ray

    now = time.monotonic()
    hit = _HANDLES.get(name)
    if hit is not None and now - hit[0] < TTL_S:
        return hit[1]
    handle = ray.get_actor(name)
    _HANDLES[name] = (now, handle)
    return handle


def forget(name: str) -> None:
    """Drop the kept handle (after a call to it failed): the next `peer` looks it up."""
    _HANDLES.pop(name, None)


class PeerOutbox:
    """Fire-and-forget calls to a named peer that are sent again when the peer died for
    good before answering (a replacement of the same name takes them): Ray retries a call
    across a restart of the same actor (max_task_retries), not onto its replacement.

    `send(method, *args)` calls `peer(name).method.remote(*args)`; `check()` looks at the
    calls that returned: one that failed because the actor is gone is resent (after
    `forget`, so the lookup finds the replacement), up to `attempts` times; any other
    failure is the peer's own error, counted and logged. At most `limit` calls are
    tracked (the oldest beyond are assumed done). Not thread-safe: one sender thread."""

    def __init__(self, name: str, attempts: int = 5, limit: int = 4096) -> None:
        self.name, self.attempts, self.limit = name, attempts, limit
        self._calls: list[tuple[Any, str, tuple, int]] = []  # (ref, method, args, tries)
        self.resent = self.failed = 0
        self.last_error: str | None = None

    def send(self, method: str, *args: Any) -> Any:
        self.check()
        ref = self._call(method, args)
        self._calls.append((ref, method, args, 1))
        del self._calls[:-self.limit]
        return ref

    def refs(self) -> list[Any]:
        return [c[0] for c in self._calls if c[0] is not None]

    def _call(self, method: str, args: tuple) -> Any:
        try:
            return getattr(peer(self.name), method).remote(*args)
        except ValueError:  # no actor of that name right now: try again at the next check
            return None

    def check(self) -> None:
        import ray
        from ray.exceptions import RayActorError

        if not self._calls:
            return
        refs = [c[0] for c in self._calls if c[0] is not None]
        done = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0]) if refs else set()
        keep = []
        for ref, method, args, tries in self._calls:
            if ref is not None and ref not in done:
                keep.append((ref, method, args, tries))
                continue
            gone = "no actor of that name" if ref is None else None
            if ref is not None:
                try:
                    ray.get(ref, timeout=0)
                    continue
                except RayActorError as exc:  # died for good before answering
                    gone = f"{type(exc).__name__}: {str(exc)[:300]}"
                except Exception as exc:  # noqa: BLE001 - the peer's own error, not ours
                    cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps it
                    self.failed += 1
                    self.last_error = f"{type(cause).__name__}: {str(cause)[:300]}"
                    log.warning("%s.%s failed: %s", self.name, method, self.last_error)
                    continue
            forget(self.name)
            if tries >= self.attempts:
                self.failed += 1
                self.last_error = gone
                log.error("%s.%s lost after %d attempts: %s", self.name, method, tries, gone)
                continue
            self.resent += 1
            keep.append((self._call(method, args), method, args, tries + 1))
        self._calls = keep
