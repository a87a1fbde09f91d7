"""Pipeline: config, ingest, messages, alert rules, placement, orchestrator, CLI and HTTP API.

Imports model/ and storage/; only the orchestrator and the CLI import actors/.
"""
