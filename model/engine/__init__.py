"""Streaming chunked prefill, per-camera KV memory and bi-granularity decoding.

Public entry points (import the modules; this package imports nothing, so torch-free
users such as a KV index can import `records` and `store` types cheaply):

- `engine.Engine(model, EngineConfig(...), store=None)`: `submit(camera, seq, frames,
  group_times, wall_origin)`, `step() -> list[PrefillResult]`, `run_until_idle()`,
  `ask(camera, question, seq_range=None, boosts=None) -> DecodeResult`,
  `standing(camera, seq, questions) -> list[float]`, `standing_batch(requests)`,
  `recover(camera) -> int`, `seqs_in_window(camera, t0, t1)`, `wall_origin(camera)`,
  `mark_important(camera, seq)`, `drop_camera(camera)`, `stats()`.
- `store`: the `ChunkTensorStore` protocol, `ChunkUnavailable`, `InMemoryChunkStore`.
- `records`: `ChunkMeta` (token layout; `to_meta`/`from_meta` for persistence), plans,
  `PrefillResult`, `DecodeResult`.

Modules: `context` (assembly, RoPE at gather), `runner` (layer-wise forward, reused
prefill buffers), `blocks` (fused, compiled layer halves), `graphs` (CUDA-graph decode
steps), `scheduler` (bounded queues, camera records), `parts` (what `decode` and
`standing` take instead of the Engine), `decode`, `standing`, `relevance`. RMSNorm and
RoPE themselves are model.layers, shared with the reference decoder (model.qwen2).
"""
