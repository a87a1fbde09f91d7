"""Dense again from the recording: what a chunk costs when a question wants it dense and
its fine KV is gone, measured through `xlwatch serve` (nothing beside it).

A file camera with a recording (`record.mode: continuous`) and `memory.persist_fine:
important` is read once; its footage is a still scene (`bench/service.py`'s clip with
no walker), so no CV event marks a chunk important and no fine KV reaches the disk. The
run then, through the API only:
1. asks `--windows` questions, each over its own window of `--window-chunks` chunks
   (`since`/`until`): every chunk dense from the pools (the reference latency);
2. restarts the service (the pools are gone: the memory comes back coarse from disk);
3. asks the same questions again: the top-k chunks of each are read back from the
   recording and prefilled again (`chunks_used` says `redense`), the cost read from the
   memory actor's counters in /health (`redense_read` s: demux, decode and resize;
   `redense_prefill` s: the engine's prefill and the second plan);
4. asks them a third time: dense from the pools again.
It reports per chunk the read and the prefill seconds, the question latencies of each
round, and how many answers equal the reference's. Random weights at the real sizes on
a GPU (`xlwatch model make-random`); `--quick` runs the tiny model on the CPU.

    python bench/redense.py [--quick] [--windows 4] [--window-chunks 8] [--model DIR]
        [--work DIR] [--source-fps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.served import CLI, Served, percentile, serve_env  # noqa: E402
from bench.service import CHUNK_S, clip  # noqa: E402

QUESTION = "What happened in the hall, and when?"


def write_config(path: Path, data: Path, model: Path, port: int, quick: bool,
                 top_k: int) -> None:
    cfg = {
        "data_dir": str(data), "allowed_roots": [str(data.parent)],
        "api": {"host": "127.0.0.1", "port": port},
        "model": {"backend": "videoxl2", "path": str(model),
                  "device": "cpu" if quick else "cuda"},
        "engine": {"max_new_tokens": 8 if quick else 64, "top_k": top_k},
        "memory": {"persist_fine": "important", "redense_max_chunks": top_k},
        "ray": {"num_cpus": 8},
        "camera_defaults": {"fps": 1, "record": {"mode": "continuous", "segment_s": 10}},
        "alerts": {"rules": []},
    }
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML


class Service(Served):
    def memory_stats(self) -> dict:
        health = self.http.get("/health").json()
        stats = (health.get("service") or {}).get("memory_stats") or {}
        return next(iter(stats.values()), {})

    def chunks(self, camera: str) -> int:
        cams = (self.memory_stats().get("engine") or {}).get("cameras") or {}
        return (cams.get(camera) or {}).get("chunks", 0)

    def finished(self, camera: str) -> bool:
        """The file was read to its end and its chunks prefilled (status `finished`)."""
        r = self.http.get(f"/cameras/{camera}")
        return r.status_code == 200 and r.json().get("status") == "finished"

    def ask(self, since: float, until: float) -> dict:
        started = time.monotonic()
        r = self.http.post("/ask", json={"camera": "hall", "question": QUESTION,
                                         "since": since, "until": until})
        if r.status_code != 200:
            raise RuntimeError(f"POST /ask: {r.status_code} {r.text[:300]}")
        return {**r.json(), "wall_s": time.monotonic() - started}


def chunk_windows(config: Path, windows: int, per: int) -> list[tuple[float, float]]:
    """(since, until) of `windows` disjoint runs of `per` chunks, from the chunk rows."""
    from pipeline.config import load_config
    from storage import repo
    from storage.db import open_database

    db = open_database(load_config(config, env={}).database_url)
    try:
        with db.session() as s:
            rows = sorted(repo.list_chunks(s, "hall"), key=lambda c: c.seq)
    finally:
        db.close()
    out = []
    for w in range(windows):
        part = rows[w * per:(w + 1) * per]
        if len(part) == per:
            out.append((part[0].wall_start + 0.01, part[-1].wall_end - 0.01))
    return out


def ask_round(svc: Service, windows: list[tuple[float, float]], label: str) -> list[dict]:
    out = []
    for since, until in windows:
        before = svc.memory_stats()
        a = svc.ask(since, until)
        after = svc.memory_stats()
        out.append({"round": label, "text": a["text"], "latency_ms": a["latency_ms"],
                    "wall_s": round(a["wall_s"], 3), "used": a["chunks_used"],
                    "redensified": _delta(before, after, "counters", "redensified"),
                    "read_s": _delta(before, after, "seconds", "redense_read"),
                    "prefill_s": _delta(before, after, "seconds", "redense_prefill")})
        print(f"[redense] {label}: {a['latency_ms']:.0f} ms, "
              f"{sum(k == 'redense' for _s, k in a['chunks_used'])} chunks dense again",
              file=sys.stderr, flush=True)
    return out


def _delta(before: dict, after: dict, group: str, key: str) -> float:
    return round((after.get(group) or {}).get(key, 0) - (before.get(group) or {}).get(key, 0),
                 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model on the CPU")
    ap.add_argument("--windows", type=int, default=None, help="questions per round")
    ap.add_argument("--window-chunks", type=int, default=None,
                    help="chunks per question's window (= top_k: all of them dense)")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint dir (else random)")
    ap.add_argument("--work", type=Path, default=None, help="keep files here (else temp)")
    ap.add_argument("--source-fps", type=int, default=5, help="frames per second of footage")
    args = ap.parse_args()
    q = args.quick
    windows = args.windows or (2 if q else 4)
    per = args.window_chunks or (2 if q else 8)
    tmp = tempfile.TemporaryDirectory(prefix="xlwatch-redense-") if args.work is None else None
    work = Path(tmp.name if tmp else args.work)
    work.mkdir(parents=True, exist_ok=True)
    env, started = serve_env(), time.monotonic()
    model = args.model or work / "model"
    if not (model / "config.json").is_file():
        cmd = ["model", "make-tiny", str(model)] if q else [
            "model", "make-random", str(model), "--size", "real", "--device", "cuda"]
        subprocess.run([*CLI, *cmd], cwd=ROOT, env=env, check=True)
    n_chunks = windows * per
    footage = clip(work / "hall.mp4", n_chunks * CHUNK_S, args.source_fps, (640, 360), 0.0)
    from tests.services import free_port

    cfg_path = work / "xlwatch.yaml"
    records: list[dict] = []
    port = free_port()
    write_config(cfg_path, work / "data", model, port, q, per)
    svc = Service(cfg_path, work / "serve-1.log", port, env)
    try:
        svc.wait_ready(600)
        r = svc.http.post("/cameras", json={"name": "hall", "url": str(footage),
                                            "backend": "videoxl2"})
        if r.status_code >= 300:
            raise RuntimeError(f"POST /cameras: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + 1200
        while not svc.finished("hall") and time.monotonic() < deadline:
            print(f"[redense] {time.monotonic() - started:4.0f} s: {svc.chunks('hall')} of "
                  f"{n_chunks} chunks", file=sys.stderr, flush=True)
            time.sleep(5)
        held = svc.chunks("hall")
        spans = chunk_windows(cfg_path, windows, per)
        records += ask_round(svc, spans, "dense (pools)")
    finally:
        svc.stop()
    svc = Service(cfg_path, work / "serve-2.log", port, env)
    try:
        svc.wait_ready(600)
        deadline = time.monotonic() + 300
        while svc.chunks("hall") < held and time.monotonic() < deadline:
            time.sleep(2)  # the memory actor reloads the camera from the disk
        records += ask_round(svc, spans, "dense again (recording)")
        records += ask_round(svc, spans, "dense (pools, after)")
    finally:
        svc.stop()
    again = [r for r in records if r["round"].startswith("dense again")]
    n = sum(r["redensified"] for r in again)
    ref = [r["text"] for r in records if r["round"] == "dense (pools)"]
    summary = {
        "bench": "redense", "device": "cpu" if q else "cuda", "chunks": n_chunks,
        "chunks_held": held,
        "questions_per_round": len(spans), "chunks_dense_again": n,
        "read_s_per_chunk": round(sum(r["read_s"] for r in again) / n, 4) if n else None,
        "prefill_s_per_chunk": round(sum(r["prefill_s"] for r in again) / n, 4) if n else None,
        "same_answer": sum(a["text"] == t for a, t in zip(again, ref, strict=False)),
        **{f"{label}_p50_ms": percentile([r["latency_ms"] for r in records
                                          if r["round"] == label], 50)
           for label in ("dense (pools)", "dense again (recording)", "dense (pools, after)")},
    }
    for r in records:
        print(json.dumps({"bench": "redense", **{k: v for k, v in r.items() if k != "text"}}))
    print(json.dumps(summary), flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
