"""QueryActor: the Ray shell around question answering; the orchestrator keeps a pool.

Answers with `pipeline.query.core.answer` (validation, cv or videoxl2 answering,
evidence, persisting the query row). For `videoxl2` the orchestrator passes the handle of
the memory actor that holds the camera; this shell turns it into a plain callable so the
core never sees Ray. Stateless apart from its database connection, so any member of the
pool can answer any question and a restarted one needs no reload.
"""

from __future__ import annotations

from typing import Any

from actors.logs import worker_logging
from pipeline.messages import Answer, Question
from pipeline.query.core import QueryCore


class QueryActor:
    def __init__(self, cfg: Any, ask_timeout_s: float = 120.0) -> None:
        worker_logging()
        self._core = QueryCore(cfg)
        self._timeout = ask_timeout_s
        self._answered = 0

    def ask(self, question: Question, memory: Any | None = None) -> Answer:
        import ray

        llm_ask = None
        if memory is not None:
            def llm_ask(camera, text, t_range, boosts):
                ref = memory.ask.remote(camera, text, t_range, boosts)
                return ray.get(ref, timeout=self._timeout)

        answer = self._core.answer(question, llm_ask)
        self._answered += 1
        return answer

    def stats(self) -> dict:
        return {"answered": self._answered}

    def health(self) -> bool:
        return True
