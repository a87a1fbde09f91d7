"""Question answering: `core.QueryCore` (validate, answer, persist), `llm` (the video LLM's
answer with CV boosts and evidence)."""
