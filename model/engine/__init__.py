"""Streaming chunked prefill, per-camera KV memory and bi-granularity decoding.

`store` (the ChunkTensorStore protocol), `records` (typed metadata, plans, results),
`context` (assembly with RoPE at gather), `runner` (layer-wise forward), `scheduler`,
`engine` (the facade), `decode`, `standing`, `relevance`.
"""
