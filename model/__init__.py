"""The video LLM (SigLIP, DTS, projector, Qwen2), engine, KV index and tiers, CV detectors.

Pure compute: no Ray, SQL or Redis imports here.
"""
