"""The parts of an engine that questions run on, passed down instead of the Engine.

Owns: `QueryParts` (the runner, the chunk store, the system prefix's KV, the prompt builder
and tokenizer, the settings, how many past chunks a prefill context can draw on, and the
context assembler), which the Engine builds from its current parts for each call into
decode.py or standing.py; `ContextAssembler`, the one call through which a standing
question gets the prefill context of a chunk (the Engine's `context_segments`: prefix,
cached headers and stored dense KV); and `CameraRecords`, one camera's chunk records and
summary keys, with `prune`, which forgets the records the store no longer backs.

Does not: run the model, choose contexts, or hold state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from model.engine.config import EngineConfig
from model.engine.context import KVSegment
from model.engine.records import PrefillContextPlan
from model.engine.relevance import SummaryBank
from model.engine.runner import Runner
from model.engine.scheduler import CameraMemory
from model.engine.store import ChunkTensorStore
from model.prompt import PromptBuilder


class ContextAssembler(Protocol):
    def __call__(self, camera: str, plan: PrefillContextPlan) -> list[KVSegment]:
        """The segments (pre-RoPE, prefix first) a prefill with `plan` attends to."""
        ...


@dataclass(frozen=True, eq=False)
class QueryParts:
    runner: Runner
    store: ChunkTensorStore
    prefix: KVSegment  # the system prefix's pre-RoPE KV, first in every context
    prompt: PromptBuilder
    tokenizer: Any  # decode(ids, skip_special_tokens=...), eos_token_id
    cfg: EngineConfig
    history_window: int | None  # past chunks a prefill context can use (None: all)
    context_segments: ContextAssembler


@dataclass(frozen=True, eq=False)
class CameraRecords:
    """One camera's chunk records (metadata, no tensors) and its summary keys."""

    memory: CameraMemory
    summaries: SummaryBank

    def prune(self, store: ChunkTensorStore) -> int:
        """Forget records of chunks older than anything `store` still holds (dropped by
        retention); returns how many records went."""
        stored = store.seqs(self.memory.camera)
        if not stored:
            return 0
        self.summaries.forget_before(stored[0])
        return self.memory.forget_before(stored[0])
