"""The whole service under load, measured through `xlwatch serve` (nothing beside it).

Starts the real service in a subprocess (Ray on loopback, the memory actor on the GPU with
the real `TieredChunkStore` on local disk, ingest actors per camera, the query and alert
actors, SQLite in the data dir, the HTTP API), then, through the API only:
- registers a `history` file camera with `--history-s` of footage at 1 fps (read once at
  full speed: one hour of memory to ask about);
- adds live cameras in steps (`--ramp 64,128,...`): looped files played in real time
  (camera settings `loop` and `realtime`: a fake live camera at 1 fps, dropping and
  counting when the memory falls behind, as a live stream does);
- at each step waits `--warm-s`, then for `--hold-s` asks the history camera a question
  every `--ask-every-s` seconds (answers of `engine.max_new_tokens` = 64 tokens) and
  reads /metrics and /health at both ends.

A step is held in real time when the memory prefilled at least 97 % of the chunks the
cameras' footage holds in the window (N x hold / 16 s), the memory's backlog did not grow
by more than one chunk per camera, and no chunk or frame was dropped. The run reports
the largest N held, question p50/p95 per step, alert latency after the end of the chunk
holding the event (alerts from a motion rule on the CV events and from a standing
question scored on every chunk), disk bytes the KV writer wrote per camera-hour of
footage, host memory of the service's process tree and GPU memory.

The footage is synthetic (`clip`): a still textured scene where a dark figure walks
through for `--active-share` of each loop, so CV events (motion) mark that share of the
chunks as important, as a camera at a quiet doorway would. Random weights at the real
sizes on a GPU (`xlwatch model make-random`); `--quick` runs the tiny model on the CPU
with two small steps (CI smoke run).

    python bench/service.py [--quick] [--ramp 64,128,192,256,320] [--warm-s 40]
        [--hold-s 90] [--history-s 3600] [--history-wait-s 300] [--ask-every-s 2]
        [--active-share 0.1] [--source-fps 5] [--model DIR] [--work DIR] [--log FILE]
        [--budget-s S]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.served import (  # noqa: E402
    CLI,
    Served,
    after_chunk_end,
    alerts_and_chunk_ends,
    percentile,
    serve_env,
)

CHUNK_S = 16.0  # 16 frames per chunk at 1 fps
QUESTION = "What happened at the door, and when?"


# ---- footage -------------------------------------------------------------------------
def clip(path: Path, seconds: float, fps: int, size: tuple[int, int], active_share: float,
         seed: int = 0) -> Path:
    """A still textured scene; a dark figure crosses it during the first `active_share`
    of the clip. MPEG-4 with a keyframe every second, so 1 fps sampling decodes keyframes
    only (as a camera with a 1 s GOP)."""
    import av

    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (h // 8, w // 8, 3), dtype=np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))  # blocky texture, no noise
    frames = int(seconds * fps)
    walk = max(1, int(frames * active_share))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.gop_size, stream.options = fps, {"qscale": "6"}
        for i in range(frames):
            img = base.copy()
            if i < walk:
                x = int((w - w // 10) * i / walk)
                img[h // 4: h // 4 + h // 2, x: x + w // 10] = (30, 30, 40)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# ---- the service ---------------------------------------------------------------------
def write_config(path: Path, data: Path, model: Path, port: int, quick: bool) -> None:
    cfg = {
        "data_dir": str(data),
        "allowed_roots": [str(data.parent)],  # the footage files lie beside the data dir
        "api": {"host": "127.0.0.1", "port": port},
        "model": {"backend": "videoxl2", "path": str(model),
                  "device": "cpu" if quick else "cuda"},
        "engine": {"max_new_tokens": 64},
        # One machine's private Ray: the resource requests are logical; enough CPUs for
        # every camera's ingest actor (0.05 each: decode and CV of one 1 fps camera), and
        # no memory reservation per camera (Ray's memory resource would cap the count).
        "ray": {"num_cpus": 64, "ingest": {"num_cpus": 0.05, "memory_mb": 0}},
        "camera_defaults": {"fps": 1, "loop": True, "realtime": True},
        "cameras": {"history": {"loop": False, "realtime": False}},
        "alerts": {"cooldown_s": 60, "rules": [
            {"name": "door-motion", "kind": "off_hours",
             "params": {"window": "00:00-23:59", "kinds": ["motion"]}},
            {"name": "anomaly", "kind": "standing",
             "params": {"question": "Is anyone fighting or lying on the floor? Answer yes or no.",
                        "threshold": 0.5}}]},
    }
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML


def metric_sum(text: str, name: str, camera_re: str = ".*") -> float:
    total = 0.0
    for m in re.finditer(rf'^{name}(?:_total)?{{camera="({camera_re})"[^}}]*}} (\S+)$', text,
                         re.M):
        total += float(m.group(2))
    return total


class Service(Served):
    """`xlwatch serve` (bench/served.py) and the few API calls this benchmark makes."""

    def add(self, name: str, url: Path, retry_s: float = 120.0) -> None:
        """POST /cameras; a 503 (SQLite busy while a hundred ingest processes start and
        open the database) is retried, as the API's error code invites, for retry_s."""
        deadline, wait, retried = time.monotonic() + retry_s, 0.5, False
        while True:
            r = self.http.post("/cameras", json={"name": name, "url": str(url),
                                                 "backend": "videoxl2"})
            if r.status_code == 503 and time.monotonic() < deadline:
                time.sleep(wait)
                wait, retried = min(wait * 2, 8.0), True
                continue
            if r.status_code == 409 and retried:  # a 503 after its commit: it is there
                return
            if r.status_code >= 300:
                raise RuntimeError(f"POST /cameras {name}: {r.status_code} {r.text[:300]}")
            return

    def snapshot(self) -> dict:
        text = self.http.get("/metrics").text
        health = self.http.get("/health").json()
        stats = next(iter(((health.get("service") or {}).get("memory_stats") or {}).values()),
                     {})
        cams = (stats.get("engine") or {}).get("cameras") or {}
        live = {c: v for c, v in cams.items() if c != "history"}
        writer = (stats.get("kv") or {}).get("writer") or {}
        return {
            "t": time.monotonic(), "prefilled": sum(v["chunks"] for v in live.values()),
            "pending": sum(v["pending"] for v in live.values()),
            "engine_dropped": sum(v["dropped"] for v in live.values()),
            "history_chunks": (cams.get("history") or {}).get("chunks", 0),
            "history_pending": (cams.get("history") or {}).get("pending", 0),
            "frames_dropped": metric_sum(text, "xlwatch_frames_dropped", r"live\d+"),
            "emitted": metric_sum(text, "xlwatch_chunks_emitted", r"live\d+"),
            "writer_bytes": writer.get("bytes_written", 0),
            "writer_backlog": writer.get("bytes"),
            "all_chunks": sum(v["chunks"] for v in cams.values()),
            "stats_ok": bool(stats),
            "loop_s": (stats.get("loop") or {}).get("seconds") or {},
            "phases_s": {**((stats.get("engine") or {}).get("seconds") or {}),
                         **{k: v for k, v in (stats.get("seconds") or {}).items()
                            if k in ("mailbox", "standing")}},
            "check_ms": (health.get("service") or {}).get("check_ms"),
        }

    def profile(self, steps: int, timeout_s: float) -> dict:
        """POST /debug/profile: the memory loop over its next steps (cProfile)."""
        r = self.http.post("/debug/profile", json={"steps": steps, "timeout_s": timeout_s},
                           timeout=timeout_s + 120)
        if r.status_code != 200:
            raise RuntimeError(f"POST /debug/profile: {r.status_code} {r.text[:300]}")
        return r.json()["slots"]

    def ask(self, camera: str, question: str) -> float:
        started = time.monotonic()
        r = self.http.post("/ask", json={"camera": camera, "question": question})
        if r.status_code != 200:
            raise RuntimeError(f"POST /ask: {r.status_code} {r.text[:300]}")
        return time.monotonic() - started


# ---- measurements --------------------------------------------------------------------
def host_mem_gib(pid: int) -> float | None:
    """Proportional set size (PSS) of `pid` and all its descendants: each shared page
    (libraries, Ray's object store) split over the processes sharing it, so the sum is
    what the tree holds (Linux /proc; None elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parent: dict[int, int] = {}
    for d in proc.iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    kib = 0
    for p in tree:
        try:
            rollup = (proc / str(p) / "smaps_rollup").read_text()
            kib += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))
        except (OSError, ValueError, AttributeError):
            pass
    return round(kib / 2**20, 2)


def gpu_used_gib() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,"
                              "nounits"], capture_output=True, text=True, timeout=20).stdout
        return round(float(out.split()[0]) / 1024, 2)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def asker(svc: Service, every_s: float, stop: threading.Event, out: list[float],
          errors: list[str]) -> None:
    while not stop.is_set():
        try:
            out.append(svc.ask("history", QUESTION))
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        stop.wait(every_s)


def profile_step(svc: Service, steps: int, where: Path, cameras: int) -> dict:
    """The memory loop profiled over `steps` steps under this load: the tables to a file,
    the totals (loop, phases) returned for the step's JSON line."""
    try:
        slots = svc.profile(steps, 120.0)
    except Exception as exc:  # noqa: BLE001 - a profile that failed is reported, not fatal
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"profile-{cameras}.txt"
    with path.open("w") as f:
        for slot, rep in slots.items():
            f.write(f"== slot {slot}: {json.dumps({k: v for k, v in rep.items() if not k.startswith('by_')})}\n")
            f.write(f"-- by cumulative time\n{rep.get('by_cumulative', '')}\n")
            f.write(f"-- by own time\n{rep.get('by_own_time', '')}\n")
    print(f"[service] profile of {cameras} cameras in {path}", file=sys.stderr)
    return {slot: {k: v for k, v in rep.items() if not k.startswith("by_")}
            for slot, rep in slots.items()}


def shares(a: dict, b: dict, window: float) -> dict:
    """Seconds of b minus a, as shares of the window (where the loop's time went)."""
    return {k: round((b.get(k, 0.0) - a.get(k, 0.0)) / window, 3) for k in b} if window else {}


def alert_latency(cfg_path: Path) -> dict:
    """Seconds from the end of the chunk holding each alert's event to the alert's row."""
    rows, ends = alerts_and_chunk_ends(cfg_path)
    after: dict[str, list[float]] = {}
    for r in rows:
        if (d := after_chunk_end(r, ends[r.camera])) is not None:
            after.setdefault(r.rule, []).append(d)
    return {rule: {"alerts": len(v), "p50_s": percentile(v, 50), "p95_s": percentile(v, 95)}
            for rule, v in sorted(after.items())}


def progress(svc: Service, started: float, what: str) -> dict:
    """One line on stderr: what the service holds now (long runs show they are alive)."""
    s = svc.snapshot()
    print(f"[service] {time.monotonic() - started:5.0f} s {what}: history "
          f"{s['history_chunks']} (+{s['history_pending']} pending), live prefilled "
          f"{s['prefilled']} (+{s['pending']} pending, {s['engine_dropped']:.0f} dropped), "
          f"kv written {s['writer_bytes'] / 2**30:.2f} GiB, stats "
          f"{'ok' if s['stats_ok'] else 'MISSING'} ({s['check_ms']} ms)", file=sys.stderr,
          flush=True)
    return s


def wait_history(svc: Service, want: int, started: float, limit_s: float,
                 stall_s: float) -> dict:
    """Until the history camera holds `want` chunks, `limit_s` passed, or nothing moved
    for `stall_s` (then the run goes on with what it has, and says so)."""
    deadline, last, moved = time.monotonic() + limit_s, -1, time.monotonic()
    while True:
        s = progress(svc, started, "history")
        if s["history_chunks"] != last:
            last, moved = s["history_chunks"], time.monotonic()
        if s["history_chunks"] >= want or time.monotonic() > deadline:
            return s
        idle = s["history_pending"] == 0  # nothing queued: what the file gave is all there
        if time.monotonic() - moved > (min(stall_s, 20.0) if idle else stall_s):
            print(f"[service] history stalled at {last} chunks for {stall_s:.0f} s",
                  file=sys.stderr)
            return s
        time.sleep(10)


def emit(record: dict) -> None:
    print(json.dumps({"bench": "service", **record}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model on the CPU, 2 small steps")
    ap.add_argument("--ramp", default=None, help="live camera counts, comma separated")
    ap.add_argument("--warm-s", type=float, default=None)
    ap.add_argument("--hold-s", type=float, default=None)
    ap.add_argument("--history-s", type=float, default=None)
    ap.add_argument("--ask-every-s", type=float, default=2.0)
    ap.add_argument("--active-share", type=float, default=0.1,
                    help="share of each loop in which something moves (CV events)")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint dir (else random)")
    ap.add_argument("--work", type=Path, default=None, help="keep files here (else a temp dir)")
    ap.add_argument("--source-fps", type=int, default=5,
                    help="frame rate of the looped live clip (the service samples 1 fps)")
    ap.add_argument("--history-wait-s", type=float, default=300.0,
                    help="longest wait for the history camera's memory before the ramp")
    ap.add_argument("--log", type=Path, default=None, help="the service's log (else in --work)")
    ap.add_argument("--profile-steps", type=int, default=None,
                    help="profile the memory loop over this many steps mid-hold (0: no)")
    ap.add_argument("--profile-dir", type=Path, default=None,
                    help="where the profiles' tables go (else --work)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="skip the steps that would end later than this after the start")
    args = ap.parse_args()
    q = args.quick
    ramp = [int(x) for x in (args.ramp or ("2,4" if q else "64,128,192,256,320")).split(",")]
    warm_s = args.warm_s if args.warm_s is not None else (8.0 if q else 40.0)
    hold_s = args.hold_s if args.hold_s is not None else (24.0 if q else 90.0)
    history_s = args.history_s if args.history_s is not None else (64.0 if q else 3600.0)
    profile_steps = args.profile_steps if args.profile_steps is not None else (2 if q else 30)

    from tests.services import free_port

    tmp = tempfile.TemporaryDirectory(prefix="xlwatch-service-") if args.work is None else None
    work = Path(tmp.name if tmp else args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = serve_env()
    model = args.model
    started = time.monotonic()
    if model is None:
        model = work / "model"
        if not (model / "config.json").is_file():
            cmd = ["model", "make-tiny", str(model)] if q else [
                "model", "make-random", str(model), "--size", "real", "--device", "cuda"]
            subprocess.run([*CLI, *cmd], cwd=ROOT, env=env, check=True)
    print(f"[service] model ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
    live_clip = clip(work / "door.mp4", 64.0 if q else 240.0, args.source_fps, (640, 360),
                     args.active_share)
    hist_clip = clip(work / "history.mp4", history_s, 1, (384, 216), args.active_share, seed=1)
    port = free_port()
    cfg_path = work / "xlwatch.yaml"
    write_config(cfg_path, work / "data", model, port, q)
    svc = Service(cfg_path, args.log or work / "serve.log", port, env)
    steps: list[dict] = []
    try:
        svc.wait_ready(600)
        print(f"[service] ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
        svc.add("history", hist_clip)
        hist = wait_history(svc, int(history_s // CHUNK_S), started, args.history_wait_s,
                            stall_s=120.0)
        print(f"[service] history: {hist['history_chunks']} chunks after "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
        cameras = 0
        for n in ramp:
            if args.budget_s and time.monotonic() - started + warm_s + hold_s > args.budget_s:
                print(f"[service] step {n} skipped: over --budget-s", file=sys.stderr)
                break
            added = time.monotonic()
            with ThreadPoolExecutor(32) as pool:  # as many operators would, at once
                list(pool.map(lambda name: svc.add(name, live_clip),
                              [f"live{i:03d}" for i in range(cameras, n)]))
            cameras = n
            print(f"[service] {n} live cameras after {time.monotonic() - started:.0f} s "
                  f"(adding took {time.monotonic() - added:.0f} s)", file=sys.stderr)
            time.sleep(warm_s)
            progress(svc, started, f"{n} cameras warm")
            a, mem_a = svc.snapshot(), host_mem_gib(svc.proc.pid)
            stop, lat, errors = threading.Event(), [], []
            th = threading.Thread(target=asker, args=(svc, args.ask_every_s, stop, lat, errors))
            th.start()
            gpu_peak = gpu_used_gib()
            end = time.monotonic() + hold_s
            while time.monotonic() < end:
                time.sleep(min(15.0, max(0.0, end - time.monotonic())))
                progress(svc, started, f"{n} cameras, {len(lat)} questions")
                g = gpu_used_gib()
                gpu_peak = g if gpu_peak is None or (g or 0) > gpu_peak else gpu_peak
            b = svc.snapshot()
            lat = list(lat)  # the hold's questions (not those asked while profiling)
            # after the window (the profiler slows the loop): the same load, questions on
            profiled = (profile_step(svc, profile_steps, args.profile_dir or work, n)
                        if profile_steps else None)
            stop.set()
            th.join(timeout=300)
            window = b["t"] - a["t"]
            expected = n * window / CHUNK_S
            prefilled = b["prefilled"] - a["prefilled"]
            dropped = (b["engine_dropped"] - a["engine_dropped"]
                       + b["frames_dropped"] - a["frames_dropped"])
            growth = b["pending"] - a["pending"]
            hours = b["all_chunks"] * CHUNK_S / 3600
            step = {
                "step": "ramp", "cameras": n, "window_s": round(window, 1),
                "chunks_expected": round(expected, 1), "chunks_prefilled": prefilled,
                "prefilled_share": round(prefilled / expected, 3) if expected else None,
                "backlog_start": a["pending"], "backlog_end": b["pending"],
                "dropped": dropped, "emitted": b["emitted"] - a["emitted"],
                "held": bool(prefilled >= 0.97 * expected and growth <= n and dropped == 0),
                "questions": len(lat), "question_errors": errors[:3],
                "question_p50_s": percentile(lat, 50), "question_p95_s": percentile(lat, 95),
                "history_chunks": b["history_chunks"],
                "loop_shares": shares(a["loop_s"], b["loop_s"], window),
                "phase_shares": shares(a["phases_s"], b["phases_s"], window),
                "profile": profiled,
                "host_pss_gib": host_mem_gib(svc.proc.pid), "host_pss_start_gib": mem_a,
                "gpu_used_gib": gpu_peak, "kv_writer_backlog": b["writer_backlog"],
                "disk_gib_per_camera_hour_so_far": round(
                    b["writer_bytes"] / 2**30 / hours, 3) if hours else None,
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            steps.append(step)
            emit(step)
        final = svc.snapshot()
    finally:
        svc.stop()
    footage_h = final["all_chunks"] * CHUNK_S / 3600
    held = [s["cameras"] for s in steps if s["held"]]
    emit({
        "step": "summary", "largest_held": max(held) if held else 0,
        "ramp": ramp, "hold_s": hold_s, "history_s": history_s,
        "active_share": args.active_share,
        "disk_written_gib": round(final["writer_bytes"] / 2**30, 6),
        "camera_hours": round(footage_h, 3),
        "disk_gib_per_camera_hour": round(final["writer_bytes"] / 2**30 / footage_h, 4)
        if footage_h else None,
        "alert_latency_after_chunk_end": alert_latency(cfg_path),
        "device": "cpu (tiny model)" if q else "cuda (random weights, real sizes)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python bench/service.py " + " ".join(sys.argv[1:]),
        "wall_s": round(time.monotonic() - started, 1),
    })
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
