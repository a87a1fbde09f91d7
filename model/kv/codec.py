"""Disk forms of KV: what a chunk's tensors become on disk, and back.

The tiered store applies one `DiskCodec` to every write to the disk (and so the cold tier)
and to every read from it; the GPU and host pools always hold the memory form. A codec
records in the file's metadata what it did (`disk_codec`) and the memory form's size
(`memory_nbytes`, what the index accounts for the chunk after a restart), so files written
with another codec, or none, still read back. The store knows no model layout: a codec
that needs one (the coarse re-pooling in `model.engine.disk_forms`) is injected.

- `Fp8Codec`: K and V in float8 e4m3 with one float32 scale per (layer, head, token), as
  FP8 KV caches do in serving engines; half the bytes; other tensors are kept as they are.
- `Chain`: codecs applied in order on the way out and in reverse on the way in (by what
  the file says it went through, so turning a codec off keeps its files readable).
"""

from __future__ import annotations

from typing import Protocol

import torch

CODEC_KEY = "disk_codec"
MEMORY_BYTES_KEY = "memory_nbytes"
CODEC_META_KEYS = (CODEC_KEY, MEMORY_BYTES_KEY, "disk_coarse_ratio")
FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)  # 448


class DiskCodec(Protocol):
    name: str

    def encode(self, form: str, tensors: dict[str, torch.Tensor],
               meta: dict[str, str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The disk form and the metadata that decoding it needs."""
        ...

    def decode(self, form: str, tensors: dict[str, torch.Tensor],
               meta: dict[str, str]) -> dict[str, torch.Tensor]:
        """The memory form of what `encode` wrote (`meta` is the file's)."""
        ...


def applied(meta: dict[str, str]) -> list[str]:
    """The codecs a file's tensors went through, in order."""
    return [c for c in meta.get(CODEC_KEY, "").split("+") if c]


class Fp8Codec:
    """`enabled=False` still decodes FP8 files (written before the setting changed)."""

    name = "fp8"
    KEYS = ("k", "v")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def encode(self, form, tensors, meta):
        if not self.enabled:
            return tensors, {}
        out = dict(tensors)
        for key in self.KEYS:
            t = tensors.get(key)
            if t is None or not t.is_floating_point() or t.dim() < 2:
                continue
            amax = t.detach().float().abs().amax(dim=-1, keepdim=True)  # [..., T, 1]
            scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
            out[key] = (t.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8)
            out[f"{key}.fp8_scale"] = scale
            out[f"{key}.fp8_dtype"] = torch.empty(0, dtype=t.dtype)  # the memory dtype
        return out, {}

    def decode(self, form, tensors, meta):
        out = dict(tensors)
        for key in self.KEYS:
            scale = out.pop(f"{key}.fp8_scale", None)
            dtype_t = out.pop(f"{key}.fp8_dtype", None)
            if scale is None:
                continue
            dtype = dtype_t.dtype if dtype_t is not None else torch.bfloat16
            out[key] = (out[key].float() * scale.to(out[key].device)).to(dtype)
        return out


class Chain:
    def __init__(self, *codecs: DiskCodec) -> None:
        self.codecs = codecs
        self.name = "+".join(c.name for c in codecs)

    def encode(self, form, tensors, meta):
        extra: dict[str, str] = {}
        names = []
        for codec in self.codecs:
            before = tensors
            tensors, more = codec.encode(form, tensors, meta)
            extra.update(more)
            if tensors is not before:
                names.append(codec.name)
        return tensors, {**extra, CODEC_KEY: "+".join(names)}

    def decode(self, form, tensors, meta):
        by_name = {c.name: c for c in self.codecs}
        for name in reversed(applied(meta)):
            if name not in by_name:
                raise ValueError(f"chunk file written with disk codec {name!r}, which this "
                                 f"store does not have (it has {self.name!r})")
            tensors = by_name[name].decode(form, tensors, meta)
        return tensors
