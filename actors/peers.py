"""Finding peer actors by name (the orchestrator names memory and alert actors).

Actor shells pass names, not handles, to one another: handles in constructor arguments
live in the object store, and Ray cannot restart an actor whose arguments were lost; a
name also finds the replacement of a peer that died for good.
"""

from __future__ import annotations

from typing import Any


def peer(name: str) -> Any:
    """The live actor named `name` in this job's namespace (raises ValueError if none)."""
    import ray

    return ray.get_actor(name)
