"""Pipeline: the domain (config, ingest and analysis, messages, memory, query, alerts,
placement, wiring) and, in `pipeline.app`, the composition root (orchestrator, service,
CLI, HTTP API, demo, analyze). Imports only go down: app -> actors -> domain -> model,
storage (import-linter's layers contract in pyproject.toml).
"""
