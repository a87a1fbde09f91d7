"""Finding peer actors by name (the orchestrator names memory and alert actors).

Actor shells pass names, not handles, to one another: handles in constructor arguments
live in the object store, and Ray cannot restart an actor whose arguments were lost; a
name also finds the replacement of a peer that died for good.
"""

from __future__ import annotations

import time
from typing import Any

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
