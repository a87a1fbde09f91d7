"""Service-side glue of the answer backends (cv, videoxl2), questions, alerts, analyze."""
