"""The composition root: the only code above actors/. The orchestrator (applies
`ray.remote`), the service, the CLI, the HTTP API, the demo and `analyze`."""
