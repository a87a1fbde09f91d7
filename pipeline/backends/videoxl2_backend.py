"""The `videoxl2` backend's service side: engine glue, CV boosts and evidence.

`VideoXL2Memory` is what a memory actor holds for video-LLM cameras: the loaded model,
one `Engine` over a tiered KV store on the data dir (so a restarted actor recovers each
camera with `engine.recover`), and per-camera chunk times for mapping windows to chunks.
`answer_llm` turns a question into an engine `ask` with relevance boosts for chunks whose
CV events match the question, and attaches those events (with thumbnails) as evidence.
It does not implement attention, decoding or tiering (model/engine, model/kv).
"""

from __future__ import annotations

import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from pipeline.backends.cv_backend import StoredEvent
from pipeline.backends.evidence import thumbnail_relpath
from pipeline.messages import Answer, AnswerInterval, FrameChunk, Question

# Question words -> CV event kinds whose chunks get a relevance boost.
_KIND_WORDS = {
    "person_enter": r"person|people|someone|anyone|anybody|man\b|woman|men\b|women|enter|"
                    r"arriv|came\b|walk",
    "person_leave": r"leave|left|exit|gone",
    "motion": r"motion|mov|activity|happen",
    "crowd": r"crowd|group|many",
    "loitering": r"loiter|linger|hang",
    "tamper_blocked": r"tamper|block|cover",
    "tamper_blurred": r"tamper|blur",
    "tamper_moved": r"tamper|moved|turn",
}
BOOST = 1.0


def boosts_for(question: str, events: list[StoredEvent]) -> dict[int, float]:
    """Per-chunk boost: BOOST for each chunk holding a CV event the question is about."""
    text = question.lower()
    # Word starts only: "camera" must not read as "came", "human" as "man".
    kinds = {k for k, pat in _KIND_WORDS.items() if re.search(rf"\b(?:{pat})", text)}
    out: dict[int, float] = {}
    for ev in events:
        if ev.kind in kinds and ev.chunk_seq is not None:
            out[ev.chunk_seq] = BOOST
    return out


def _resolve_model_path(cfg: Any, model_path: Path | None) -> Path:
    path = model_path or cfg.model.path
    if path is None or not Path(path).is_dir():
        raise FileNotFoundError(f"model.path: not a checkpoint directory; got {path!r}")
    return Path(path)


class VideoXL2Memory:
    def __init__(self, cfg: Any, device: int | None, model_path: Path | None = None,
                 persist: bool = True) -> None:
        import torch

        from model import load_model
        from model.engine.engine import Engine, EngineConfig

        gpu = device is not None and cfg.model.device != "cpu" and torch.cuda.is_available()
        dev = f"cuda:{device}" if gpu else "cpu"
        dtype = getattr(torch, cfg.model.dtype) if dev != "cpu" else torch.float32
        self.model = load_model(_resolve_model_path(cfg, model_path), device=dev, dtype=dtype)
        eng = cfg.engine.model_dump() if hasattr(cfg.engine, "model_dump") else {}
        self.engine = Engine(self.model, EngineConfig(**eng),
                             tiered_store(cfg, dev) if persist else None)
        self.cfg = cfg
        self.persist = persist
        self._chunks: dict[str, dict[int, tuple[float, float, float]]] = {}  # seq -> t0,t1,org
        self._prefilled = 0

    def add_camera(self, camera: str) -> dict:
        """Rebuild the camera's records from the disk store; check them against the DB."""
        recovered = self.engine.recover(camera)
        fps = self.cfg.camera(camera).fps
        mem = self.engine.memories.get(camera)
        self._chunks[camera] = {
            m.seq: (m.group_times[0], m.group_times[-1] + 3.0 / fps, m.wall_origin)
            for m in (mem.metas.values() if mem is not None else ())}
        lost: tuple = ()
        if hasattr(self.engine.store, "reconcile") and self.persist:
            from pipeline.backends.wiring import database
            from storage import repo

            with database(self.cfg).session() as s:
                rows = repo.list_chunks(s, camera) if repo.get_camera(s, camera) else []
            report = self.engine.store.reconcile(camera, [r.seq for r in rows],
                                                 [r.seq for r in rows if r.important])
            lost = tuple(report.missing)
        return {"camera": camera, "backend": "videoxl2", "recovered": recovered,
                "lost": list(lost)}

    def on_chunk(self, chunk: FrameChunk, important: bool = False,
                 standing: list[tuple[str, str]] | None = None) -> dict:
        """Prefill one chunk; keep its fine KV if CV saw something; score standing rules."""
        self.engine.submit(chunk.camera, chunk.seq, chunk.model_frames,
                           list(chunk.group_times), chunk.wall_origin)
        results = self.engine.step()
        key = (chunk.camera, chunk.seq)
        self._chunks.setdefault(chunk.camera, {})[chunk.seq] = (
            chunk.start, chunk.end, chunk.wall_origin)
        self._prefilled += len(results)
        if important and self.engine.store.has(key, "fine"):
            self.engine.store.mark_important(key)
        scores: dict[str, float] = {}
        if standing and results:
            probs = self.engine.standing(chunk.camera, chunk.seq, [q for _, q in standing])
            scores = {name: float(p) for (name, _), p in zip(standing, probs, strict=True)}
        return {"camera": chunk.camera, "seq": chunk.seq, "prefilled": len(results),
                "scores": scores}

    def ask(self, camera: str, text: str, wall_range: tuple[float, float] | None,
            boosts: dict[int, float] | None) -> dict:
        seq_range = None
        if wall_range is not None:
            seqs = [s for s, (t0, t1, org) in self._chunks.get(camera, {}).items()
                    if org + t1 >= wall_range[0] and org + t0 <= wall_range[1]]
            if not seqs:
                return {"text": "No footage of this camera is stored for that time window.",
                        "intervals": [], "interval_seqs": [], "chunks_used": [],
                        "scores": {}, "wall_origin": None}
            seq_range = (min(seqs), max(seqs))
        result = self.engine.ask(camera, text, seq_range=seq_range, boosts=boosts)
        chunks = self._chunks.get(camera, {})
        origins = [org for (_, _, org) in chunks.values()]
        seq_of = [next((s for s, (t0, t1, _) in sorted(chunks.items()) if t0 <= a <= t1 + 1),
                       None) for a, _ in result.intervals]
        return {"text": result.text, "intervals": [tuple(i) for i in result.intervals],
                "interval_seqs": seq_of,
                "chunks_used": [tuple(c) for c in result.chunks_used],
                "scores": dict(result.scores), "wall_origin": origins[-1] if origins else None}

    def drop_camera(self, camera: str, delete: bool = False) -> None:
        self._chunks.pop(camera, None)
        if delete:  # removed by the operator: its memory goes too (store included)
            self.engine.drop_camera(camera)

    def cameras(self) -> list[str]:
        return sorted(self._chunks)

    def stats(self) -> dict:
        return {"prefilled": self._prefilled, "engine": _plain(self.engine.stats())}


def tiered_store(cfg: Any, device: str) -> Any:
    """The kvtiers helper's tiered store over `<data_dir>/kv` (disk survives restarts)."""
    from model.kv.policy import GIB, TierConfig
    from model.kv.tiered import TieredChunkStore

    mem = cfg.memory
    tier = TierConfig(
        gpu_bytes=int((mem.gpu_gib or 8) * GIB), host_bytes=int(mem.host_gib * GIB),
        disk_bytes=int(mem.disk_gib * GIB), fine_ttl_s=mem.fine_ttl_s,
        coarse_ttl_s=mem.coarse_ttl_s, prefill_chunks=cfg.engine.prev_chunks)
    return TieredChunkStore(tier, Path(cfg.data_dir) / "kv", device)


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def answer_llm(cfg: Any, question: Question, events: list[StoredEvent], llm_ask: Any,
               wall_origin: float | None = None) -> Answer:
    """Ask the engine, boosting chunks with matching CV events; attach them as evidence."""
    window = None
    if question.since is not None or question.until is not None:
        window = (question.since or 0.0, question.until or float("inf"))
    boosts = boosts_for(question.text, events)
    out = llm_ask(question.camera, question.text, window, boosts or None)
    origin = wall_origin if wall_origin is not None else (out.get("wall_origin") or 0.0)
    intervals, evidence = [], set()
    seqs = out.get("interval_seqs") or [None] * len(out["intervals"])
    for (t0, t1), seq in zip(out["intervals"], seqs, strict=True):
        near = [e for e in events if e.t_start <= t1 + 1.0 and (e.t_end or e.t_start) >= t0 - 1.0]
        evidence.update(e.id for e in near if e.id is not None)
        thumb = next((e.thumbnail for e in near if e.thumbnail), None) or _chunk_thumb(
            cfg, question.camera, seq)
        intervals.append(AnswerInterval(origin + t0, origin + t1, t0, t1, "answer",
                                        1.0, thumb))
    chunks_used = tuple((int(s), str(k)) for s, k in out["chunks_used"])
    return Answer(question.camera, question.text, out["text"], "videoxl2", tuple(intervals),
                  evidence_event_ids=tuple(sorted(evidence)), chunks_used=chunks_used)


def _chunk_thumb(cfg: Any, camera: str, seq: int | None) -> str | None:
    """The keyframe the ingest side saved for the chunk holding the interval's start."""
    if seq is None:
        return None
    rel = thumbnail_relpath(camera, f"chunk-{seq:08d}")
    return rel if (Path(cfg.data_dir) / rel).exists() else None
