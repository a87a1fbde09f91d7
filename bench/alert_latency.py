"""Alert latency on a live camera, through `xlwatch serve`: how long after the moment an
alert is about (its event's wall-clock time) the alert row is committed, and how long
after the end of the chunk that held the event (a chunk is analysed once its 16 frames
are sampled, so an event can be known at the earliest when its chunk ends).

Real parts: the GStreamer RTSP server on loopback streaming vtest.avi (OpenCV's
pedestrian clip, transcoded to H.264 once), `xlwatch serve` with SQLite in a temp data
dir, a plain person rule, cooldown 0; the camera added with the CLI. CPU only.

    python bench/alert_latency.py [--seconds 75] [--fps 1] [--video PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rtsp import GstRtspServer, require_gst_rtsp  # noqa: E402
from tests.services import free_port  # noqa: E402

VTEST = ROOT.parent / "shared" / "data" / "vtest.avi"


def to_h264(src: Path, dst: Path) -> Path:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.options = {"preset": "ultrafast", "g": "10", "bf": "0"}
        for i, frame in enumerate(inp.decode(video=0)):
            if i == 0:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            img = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            img.pts = i
            for packet in stream.encode(img):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(
        values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=75.0, help="how long the camera streams")
    ap.add_argument("--fps", type=float, default=1.0, help="the camera's sampling rate")
    ap.add_argument("--video", type=Path, default=VTEST, help="footage to stream")
    args = ap.parse_args()
    require_gst_rtsp()
    with tempfile.TemporaryDirectory(prefix="xlwatch-latency-") as tmp:
        tmp = Path(tmp)
        server = GstRtspServer(to_h264(args.video, tmp / "cam.mp4")).start()
        port = free_port()
        cfg = tmp / "xlwatch.yaml"
        cfg.write_text(f"data_dir: {tmp / 'data'}\napi: {{host: 127.0.0.1, port: {port}}}\n"
                       "ray: {num_cpus: 2}\nalerts:\n  cooldown_s: 0\n  rules:\n"
                       "    - {name: person-any, kind: person}\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0"}
        cli = [sys.executable, "-c", "from pipeline.app.cli import main; main()"]
        log = open(tmp / "serve.log", "wb")
        proc = subprocess.Popen([*cli, "serve", "--config", str(cfg)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            subprocess.run([*cli, "camera", "add", "lobby", server.url, "--fps",
                            str(args.fps), "--config", str(cfg)], cwd=ROOT, env=env,
                           check=True, capture_output=True)
            print(f"streaming {args.seconds:.0f} s ...", file=sys.stderr)
            time.sleep(args.seconds)
            alerts = httpx.get(f"{base}/alerts", params={"limit": 1000}, timeout=30).json()
        finally:
            proc.send_signal(signal.SIGTERM)  # the service stops its actors itself
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            server.stop()
        from pipeline.config import load_config
        from storage import repo
        from storage.db import open_database

        db = open_database(load_config(cfg, env={}).database_url)
        with db.session() as s:
            rows = repo.list_alerts(s, after_id=0, camera="lobby", limit=10_000)
            chunks = repo.list_chunks(s, "lobby")
        db.close()
    after_event = [r.created_at - r.wall_time for r in rows]
    chunk_end = {c.seq: c.wall_end for c in chunks}
    after_chunk = []
    for r in rows:
        end = next((e for seq, e in sorted(chunk_end.items()) if e >= r.wall_time), None)
        if end is not None:
            after_chunk.append(r.created_at - end)
    record = {
        "bench": "alert_latency", "alerts": len(rows), "api_alerts": len(alerts),
        "chunks": len(chunks), "fps": args.fps, "seconds": args.seconds,
        "after_event_p50_s": round(statistics.median(after_event), 2) if rows else None,
        "after_event_p95_s": round(percentile(after_event, 95), 2) if rows else None,
        "after_chunk_end_p50_s": round(statistics.median(after_chunk), 2) if after_chunk else None,
        "after_chunk_end_p95_s": round(percentile(after_chunk, 95), 2) if after_chunk else None,
        "ids_in_time_order": [r.id for r in sorted(rows, key=lambda r: r.wall_time)]
        == sorted(r.id for r in rows),
        "hardware": "CPU (this machine)", "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python " + " ".join(sys.argv),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
