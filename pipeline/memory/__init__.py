"""Memory cores: what a memory actor holds for the cameras placed on its device slot.
`core.MemoryCore` (mailbox and batched engine steps), `videoxl2` (the video LLM's engine
over the tiered KV store), `cv` (event summaries for cv cameras)."""
