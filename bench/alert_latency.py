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
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av

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
        svc = Served(cfg, tmp / "serve.log", port)
        try:
            svc.wait_ready(120)
            subprocess.run([*CLI, "camera", "add", "lobby", server.url, "--fps",
                            str(args.fps), "--config", str(cfg)], cwd=ROOT, env=serve_env(),
                           check=True, capture_output=True)
            print(f"streaming {args.seconds:.0f} s ...", file=sys.stderr)
            time.sleep(args.seconds)
            alerts = svc.http.get("/alerts", params={"limit": 1000}, timeout=30).json()
        finally:
            svc.stop(120)
            server.stop()
        rows, ends = alerts_and_chunk_ends(cfg, ["lobby"])
    rows = [r for r in rows if r.camera == "lobby"]
    chunks = ends["lobby"]
    after_event = [r.created_at - r.wall_time for r in rows]
    after_chunk = [d for r in rows if (d := after_chunk_end(r, chunks)) is not None]
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
