"""The video LLM (SigLIP, DTS, projector, Qwen2), engine, KV index and tiers, CV detectors.

Pure compute: no Ray, SQL or Redis imports here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    # Lazy, so torch-free parts of the package (the KV index, CV rules) import without torch.
    if name == "load_model":
        from model.checkpoint import load_model

        return load_model
    raise AttributeError(f"module 'model' has no attribute {name!r}")
