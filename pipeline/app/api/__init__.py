"""The HTTP API: FastAPI app over a `ServiceAPI`, bearer-token auth, SSE alerts, metrics."""
