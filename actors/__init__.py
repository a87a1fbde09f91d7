"""Ray actor shells: each a thin wrapper around one core object from pipeline/ or model/.

`ray.remote` is applied in pipeline/orchestrator.py, not here.
"""
