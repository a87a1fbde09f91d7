"""The chunk tensor store protocol and its default in-memory implementation.

Owns: the `ChunkTensorStore` protocol through which the engine puts and gets a chunk's KV
tensors ("fine": every token's pre-RoPE K/V; "coarse": headers verbatim plus visual K/V
pooled by r, and a per-layer summary key) and its small string metadata, plus
`InMemoryChunkStore`, a dict-backed store on one device.

Does not: decide where KV lives (GPU, host, disk) or when it is dropped; that is the KV
index and tiers (`kvtiers`), which implement this same protocol. It never inspects the
tensors it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

import torch

ChunkKey = tuple[str, int]  # (camera, chunk seq)
Form = Literal["fine", "coarse"]
FORMS: tuple[Form, ...] = ("fine", "coarse")


class ChunkUnavailable(KeyError):
    """A chunk's tensors cannot be served: never stored, dropped by retention, or lost."""

    def __init__(self, key: ChunkKey, form: str, reason: str) -> None:
        super().__init__(key, form, reason)
        self.key = key
        self.form = form
        self.reason = reason

    def __str__(self) -> str:
        return f"chunk {self.key!r} form {self.form!r} unavailable: {self.reason}"


@runtime_checkable
class ChunkTensorStore(Protocol):
    def put(self, key: ChunkKey, form: Form, tensors: dict[str, torch.Tensor],
            meta: dict[str, str]) -> None: ...
    def get(self, key: ChunkKey, form: Form) -> dict[str, torch.Tensor]: ...  # on compute device
    def has(self, key: ChunkKey, form: Form) -> bool: ...
    def meta(self, key: ChunkKey) -> dict[str, str]: ...
    def seqs(self, camera: str) -> list[int]: ...  # chunks with at least coarse KV, ascending
    def pin(self, keys: Iterable[ChunkKey]) -> None: ...
    def unpin(self, keys: Iterable[ChunkKey]) -> None: ...
    def mark_important(self, key: ChunkKey) -> None: ...
    def drop_camera(self, camera: str) -> None: ...


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")


class InMemoryChunkStore:
    """Every chunk's tensors in a dict, on one device. Never drops anything by itself.

    Pins and importance are recorded (so tests and stats can see them) but have no effect:
    with nothing evicted there is nothing to protect.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._tensors: dict[tuple[ChunkKey, str], dict[str, torch.Tensor]] = {}
        self._meta: dict[ChunkKey, dict[str, str]] = {}
        self._pins: dict[ChunkKey, int] = {}
        self.important: set[ChunkKey] = set()

    def put(self, key: ChunkKey, form: Form, tensors: dict[str, torch.Tensor],
            meta: dict[str, str]) -> None:
        _check_form(form)
        self._tensors[(key, form)] = {n: t.to(self.device) for n, t in tensors.items()}
        self._meta[key] = {**self._meta.get(key, {}), **meta}

    def get(self, key: ChunkKey, form: Form) -> dict[str, torch.Tensor]:
        _check_form(form)
        try:
            return dict(self._tensors[(key, form)])
        except KeyError:
            raise ChunkUnavailable(key, form, "not stored") from None

    def has(self, key: ChunkKey, form: Form) -> bool:
        _check_form(form)
        return (key, form) in self._tensors

    def meta(self, key: ChunkKey) -> dict[str, str]:
        try:
            return dict(self._meta[key])
        except KeyError:
            raise ChunkUnavailable(key, "meta", "not stored") from None

    def seqs(self, camera: str) -> list[int]:
        return sorted({k[1] for (k, _f) in self._tensors if k[0] == camera})

    def pin(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            self._pins[key] = self._pins.get(key, 0) + 1

    def unpin(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            n = self._pins.get(key, 0) - 1
            if n > 0:
                self._pins[key] = n
            else:
                self._pins.pop(key, None)

    def pinned(self, key: ChunkKey) -> bool:
        return key in self._pins

    def mark_important(self, key: ChunkKey) -> None:
        self.important.add(key)

    def drop_camera(self, camera: str) -> None:
        for tk in [tk for tk in self._tensors if tk[0][0] == camera]:
            del self._tensors[tk]
        for key in [k for k in self._meta if k[0] == camera]:
            del self._meta[key]
            self._pins.pop(key, None)
            self.important.discard(key)
