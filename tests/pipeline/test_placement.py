"""Table tests for pipeline.placement.place (pure: no Ray)."""

from __future__ import annotations

import pytest

from pipeline.placement import (
    CameraDemand,
    NodeSpec,
    PlacementError,
    Slot,
    place,
    place_partial,
)

A = NodeSpec("a", resource="xlwatch_node_a")
B = NodeSpec("b", resource="xlwatch_node_b")
A2GPU = NodeSpec("a", gpus=2, cameras_per_device=2)
B1GPU = NodeSpec("b", gpus=1, cameras_per_device=2)


def cams(*names: str, **kw) -> list[CameraDemand]:
    return [CameraDemand(n, **kw) for n in names]


def test_cameras_alternate_between_cpu_nodes():
    got = place(cams("c1", "c2", "c3", "c4"), [A, B])
    assert sorted(got.values()).count(Slot("a")) == 2
    assert sorted(got.values()).count(Slot("b")) == 2
    assert got["c1"] != got["c2"]


def test_gpu_cameras_spread_over_nodes_before_second_gpu():
    got = place(cams("c1", "c2", "c3", needs_gpu=True), [A2GPU, B1GPU])
    assert {s.node for s in got.values()} == {"a", "b"}
    assert len(set(got.values())) == 3  # three distinct GPUs


def test_existing_assignment_is_kept_when_slot_survives():
    current = {"c1": Slot("b"), "c2": Slot("b")}
    got = place(cams("c1", "c2", "c3"), [A, B], current)
    assert got["c1"] == Slot("b") and got["c2"] == Slot("b")
    assert got["c3"] == Slot("a")


def test_cameras_of_a_removed_node_move_to_the_survivors():
    current = {"c1": Slot("a"), "c2": Slot("b")}
    got = place(cams("c1", "c2"), [B], current)
    assert got == {"c1": Slot("b"), "c2": Slot("b")}


def test_capacity_exceeded_names_camera_and_numbers():
    with pytest.raises(PlacementError, match=r"cameras\.c5: no slot can hold weight 1.0"):
        place(cams("c1", "c2", "c3", "c4", "c5", needs_gpu=True), [A2GPU])


def test_partial_placement_runs_what_fits_and_says_why_the_rest_wait():
    current = {"c3": Slot("a", 0), "c4": Slot("a", 1)}  # placed earlier: they stay
    got, unplaced = place_partial(cams("c1", "c2", "c3", "c4", "c5", needs_gpu=True),
                                  [A2GPU], current)
    assert got["c3"] == Slot("a", 0) and got["c4"] == Slot("a", 1)
    assert len(got) == 4 and set(unplaced) == {"c5"}
    assert "cameras.c5: no slot can hold weight 1.0" in unplaced["c5"]
    assert "'a/gpu0': 0.0" in unplaced["c5"] and "ray.cameras_per_device" in unplaced["c5"]


def test_gpu_camera_refused_on_cpu_only_cluster():
    with pytest.raises(PlacementError, match="needs_gpu=True"):
        place(cams("c1", needs_gpu=True), [A, B])


def test_heavier_camera_placed_first_and_full_slot_skipped():
    small = NodeSpec("a", cameras_per_device=3)
    big = NodeSpec("b", cameras_per_device=4)
    got = place([CameraDemand("heavy", 3.0), CameraDemand("x", 1.0), CameraDemand("y", 1.0)],
                [small, big])
    assert got["heavy"] == Slot("a") or got["heavy"] == Slot("b")
    loads = {"a": 0.0, "b": 0.0}
    for name, slot in got.items():
        loads[slot.node] += {"heavy": 3.0}.get(name, 1.0)
    assert loads["a"] <= 3 and loads["b"] <= 4


def test_no_nodes_is_an_error_naming_the_field():
    with pytest.raises(PlacementError, match="nodes: no node"):
        place(cams("c1"), [])


def test_slot_key_names_memory_actor():
    assert Slot("a", 1).key == "a/gpu1" and Slot("b").key == "b/cpu"
