"""Which node and which device (GPU or CPU worker) holds each camera: a pure function.

`place(cameras, nodes, current)` spreads cameras over the nodes' declared capacity. It
keeps a camera where it already is when that slot is still there and has room (moving a
camera means reloading its memory), and otherwise puts it on the least loaded slot that
can hold it. It knows nothing about Ray: the orchestrator turns a `Slot` into node
affinity (a custom resource per node) and a device index. It deliberately does not
balance by measured load; cameras declare a weight (1.0 for a 1 fps camera).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class PlacementError(ValueError):
    """A camera cannot be placed (no slot can hold it); names the camera and the numbers."""


@dataclass(frozen=True)
class NodeSpec:
    """A node as it declares itself: its name, its GPUs and how many cameras each holds.

    `resource` is the Ray custom resource that pins actors to this node
    (e.g. "xlwatch_node_a"); None for the single local node.
    """

    name: str
    gpus: int = 0
    cameras_per_device: float = 256.0  # capacity of one GPU (or of the CPU worker)
    resource: str | None = None

    def devices(self) -> list[int | None]:
        """Device slots: GPU indices, or one CPU worker (None) when the node has no GPU."""
        return list(range(self.gpus)) if self.gpus > 0 else [None]


@dataclass(frozen=True)
class CameraDemand:
    name: str
    weight: float = 1.0  # 1.0 = one camera at 1 fps
    needs_gpu: bool = False  # videoxl2 on a real deployment; cv runs anywhere


@dataclass(frozen=True, order=True)
class Slot:
    node: str
    device: int | None = None  # GPU index; None = the node's CPU worker

    @property
    def key(self) -> str:
        """Stable name of the memory actor that serves this slot."""
        return f"{self.node}/{'cpu' if self.device is None else f'gpu{self.device}'}"


def all_slots(nodes: Iterable[NodeSpec]) -> dict[Slot, float]:
    """Every device slot of every node with its capacity."""
    slots: dict[Slot, float] = {}
    for node in nodes:
        for device in node.devices():
            slots[Slot(node.name, device)] = node.cameras_per_device
    return slots


def place(
    cameras: Iterable[CameraDemand],
    nodes: Iterable[NodeSpec],
    current: Mapping[str, Slot] | None = None,
) -> dict[str, Slot]:
    """Assign every camera to a slot; raise PlacementError when one does not fit."""
    assignment, unplaced = place_partial(cameras, nodes, current)
    if unplaced:
        raise PlacementError(next(iter(unplaced.values())))
    return assignment


def place_partial(
    cameras: Iterable[CameraDemand],
    nodes: Iterable[NodeSpec],
    current: Mapping[str, Slot] | None = None,
) -> tuple[dict[str, Slot], dict[str, str]]:
    """Assign the cameras that fit; the others come back with why (name -> message).

    Cameras already placed on a slot that still exists keep it (if capacity allows);
    the rest go, heaviest first then by name (deterministic), to the slot with the lowest
    load fraction, ties broken by node then device so that consecutive cameras alternate
    between nodes before filling a node's second GPU. A camera that fits nowhere waits
    (the service runs the others and says which wait), it never blocks the rest.
    """
    cams = sorted(cameras, key=lambda c: (-c.weight, c.name))
    node_list = list(nodes)
    if not node_list and cams:
        raise PlacementError(f"nodes: no node to place cameras on; got {len(cams)} camera(s)")
    gpu_nodes = {n.name for n in node_list if n.gpus > 0}
    capacity = all_slots(node_list)
    load = dict.fromkeys(capacity, 0.0)
    assignment: dict[str, Slot] = {}
    unplaced: dict[str, str] = {}
    pending: list[CameraDemand] = []
    for cam in cams:
        slot = (current or {}).get(cam.name)
        if slot in capacity and load[slot] + cam.weight <= capacity[slot] and _fits(
            cam, slot, gpu_nodes
        ):
            assignment[cam.name] = slot
            load[slot] += cam.weight
        else:
            pending.append(cam)
    for cam in pending:
        candidates = [
            s for s in capacity
            if _fits(cam, s, gpu_nodes) and load[s] + cam.weight <= capacity[s]
        ]
        if not candidates:
            free = {s.key: capacity[s] - load[s] for s in capacity}
            unplaced[cam.name] = (
                f"cameras.{cam.name}: no slot can hold weight {cam.weight}"
                f" (needs_gpu={cam.needs_gpu}); free capacity per slot: {free}"
                " (ray.cameras_per_device sets a slot's capacity)")
            continue
        # Spread over nodes first: the device index is the secondary key.
        best = min(candidates, key=lambda s: (load[s] / capacity[s], _dev(s), s.node))
        assignment[cam.name] = best
        load[best] += cam.weight
    return assignment, unplaced


def _fits(cam: CameraDemand, slot: Slot, gpu_nodes: set[str]) -> bool:
    return not cam.needs_gpu or (slot.node in gpu_nodes and slot.device is not None)


def _dev(slot: Slot) -> int:
    return -1 if slot.device is None else slot.device
