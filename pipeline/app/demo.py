"""`xlwatch demo`: real footage through the real actors, on embedded defaults.

Finds footage without a model hub (the operator's `--video`; else OpenCV's `vtest.avi`
cached in the data dir, fetched once from the opencv-python-headless source package on
PyPI; else ../shared/data/vtest.avi; else a synthetic scene in which a figure walks in at
a known time), registers it as camera `demo`, runs the orchestrator (local Ray, CV
backend), waits for the file to be ingested, asks "when did a person enter?" and reports
the answer, the events, the alerts and where the database is. It owns no logic of the
pipeline itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from pipeline.evidence import format_span

DEMO_CAMERA = "demo"
DEMO_QUESTION = "when did a person enter?"
DEMO_RULE = "demo-person"
OPENCV_SDIST = "opencv-python-headless==4.14.0.94"
SYNTHETIC_ENTER_S = 10.0


@dataclass
class DemoReport:
    footage: str
    source: str
    database: str
    answer: dict
    events: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    timezone: str = "UTC"
    dashboard: str = ""  # the address `xlwatch serve` serves the web dashboard at

    def as_json(self) -> dict:
        return {"footage": self.footage, "source": self.source, "database": self.database,
                "question": DEMO_QUESTION, "answer": self.answer, "events": self.events,
                "alerts": self.alerts, "dashboard": self.dashboard}

    def lines(self) -> list[str]:
        tz = self.timezone
        out = [f"footage: {self.footage} ({self.source})", "",
               f"Q: {DEMO_QUESTION}", f"A: {self.answer['text']}"]
        for i in self.answer["intervals"][:10]:
            out.append(f"   {format_span(i['start'], i['end'], i['t_start'], i['t_end'], tz)}"
                       + (f"  thumbnail: {i['thumbnail']}" if i.get("thumbnail") else ""))
        if len(self.answer["intervals"]) > 10:
            out.append(f"   ... and {len(self.answer['intervals']) - 10} more")
        out += ["", f"events ({len(self.events)}):"]
        for e in self.events[:20]:
            end = e["t_end"] if e["t_end"] is not None else e["t_start"]
            wall_end = e["wall_end"] or e["wall_start"]
            out.append(f"   {e['kind']:<15} "
                       f"{format_span(e['wall_start'], wall_end, e['t_start'], end, tz)}")
        if len(self.events) > 20:
            out.append(f"   ... and {len(self.events) - 20} more (xlwatch events demo)")
        out += ["", f"alerts ({len(self.alerts)}):"]
        out += [f"   #{a['id']} {a['rule']} ({a['kind']}): {a['message']}"
                for a in self.alerts[:20]]
        if len(self.alerts) > 20:
            out.append(f"   ... and {len(self.alerts) - 20} more (xlwatch alerts)")
        out += ["", f"database: {self.database}"]
        if self.dashboard:
            out += [f"dashboard: {self.dashboard} (the camera, its timeline, ask, alerts and "
                    "admin; `xlwatch demo --serve` keeps it open, or run `xlwatch serve`)"]
        return out


def fetch_vtest(cache_dir: Path) -> Path | None:
    """vtest.avi from the opencv-python-headless sdist on the package index, cached.

    `pip download` cannot fetch that sdist without building it (its build needs CMake and
    a compiler), so the file is taken the way pip finds it: the index's JSON simple API
    (PEP 691) names the sdist and its sha256; the download is checked against that hash
    and only vtest.avi is extracted. Returns None when the index is unreachable.
    """
    target = cache_dir / "vtest.avi"
    if target.exists():
        return target
    index = _index_url()
    if not _index_reachable(index):
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        url, sha256 = _sdist_location(index)
        print(f"fetching OpenCV's sample footage once from {OPENCV_SDIST} "
              "(the package index) ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            sdist = Path(tmp) / "sdist.tar.gz"
            _download(url, sdist, sha256)
            return _extract_vtest(sdist, target)
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        print(f"could not fetch the sample footage: {exc}", file=sys.stderr)
        return None


def _index_url() -> str:
    """The package index pip uses: PIP_INDEX_URL, else pip's own default."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"].rstrip("/")
    try:
        from pip._internal.models.index import PyPI  # pip's default index, named by pip
    except ImportError:  # no pip here: no index to fetch from (the synthetic scene)
        return ""
    return PyPI.simple_url.rstrip("/")


def _sdist_location(index: str) -> tuple[str, str]:
    name, version = OPENCV_SDIST.split("==")
    req = urllib.request.Request(f"{index}/{name}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        files = json.load(resp)["files"]
    wanted = f"{name.replace('-', '_')}-{version}.tar.gz"
    entry = next(f for f in files if f["filename"] == wanted)
    return urljoin(f"{index}/{name}/", entry["url"]), entry["hashes"]["sha256"]


def _download(url: str, dest: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as out:
        while block := resp.read(1 << 20):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != sha256:
        raise ValueError(f"sha256 of {url} is {digest.hexdigest()}, the index says {sha256}")


def _extract_vtest(sdist: Path, target: Path) -> Path | None:
    with tarfile.open(sdist) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith("/samples/data/vtest.avi"):
                src = tar.extractfile(member)
                if src is None:
                    return None
                partial = target.with_suffix(".part")
                partial.write_bytes(src.read())
                partial.replace(target)
                return target
    return None


def _index_reachable(index: str, timeout_s: float = 4.0) -> bool:
    """A quick look first: offline, a download would spend minutes on retries and DNS."""
    import concurrent.futures
    import socket

    parsed = urlparse(index)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

    def probe() -> bool:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(probe).result(timeout=timeout_s + 1)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)


def synthetic_scene(path: Path, seconds: float = 30.0, fps: int = 10) -> Path:
    """An empty corridor; a figure walks in at SYNTHETIC_ENTER_S (a last-resort fallback)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = 360, 480
    rng = np.random.default_rng(0)
    background = (rng.integers(90, 110, (h, w, 3))).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = background.copy()
            t = i / fps
            if t >= SYNTHETIC_ENTER_S:
                x = int(min(w - 60, (t - SYNTHETIC_ENTER_S) * 25))
                frame[120:300, x:x + 40] = (40, 40, 160)  # body
                frame[90:120, x + 8:x + 32] = (150, 170, 200)  # head
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def find_footage(cfg: Any, video: str | None) -> tuple[str, str]:
    """(path or URL, where it came from)."""
    if video:
        if "://" not in video and not Path(video).is_file():
            raise FileNotFoundError(f"video: no such file; got {video!r}")
        return (video if "://" in video else str(Path(video).resolve())), "--video"
    data_dir = Path(cfg.data_dir)
    cached = fetch_vtest(data_dir / "samples")
    if cached is not None:
        return str(cached.resolve()), f"OpenCV sample from {OPENCV_SDIST}"
    here = Path(__file__).resolve().parents[2]
    for shared in (here.parent / "shared/data/vtest.avi",
                   here.parent.parent / "shared/data/vtest.avi"):
        if shared.is_file():
            return str(shared), "../shared/data/vtest.avi"
    scene = synthetic_scene(data_dir / "samples" / "synthetic.mp4")
    return str(scene.resolve()), f"synthetic scene, a figure enters at t={SYNTHETIC_ENTER_S}s"


def _register(cfg: Any, url: str) -> None:
    from pipeline.wiring import cipher, database
    from storage import repo

    with database(cfg).session() as s:
        if repo.get_camera(s, DEMO_CAMERA) is not None:
            repo.remove_camera(s, DEMO_CAMERA)  # every demo run starts fresh
    with database(cfg).session() as s:
        repo.add_camera(s, DEMO_CAMERA, url, cipher(cfg), fps=cfg.camera(DEMO_CAMERA).fps)
        repo.add_alert_rule(s, DEMO_RULE, "person", {}, camera=DEMO_CAMERA)


def run_demo(cfg: Any, video: str | None, console: Any | None = None,
             timeout_s: float = 600.0, live_seconds: float = 60.0) -> DemoReport:
    """Files are read to their end (at most `timeout_s`); a live stream for `live_seconds`."""
    from dataclasses import asdict

    from pipeline.app.orchestrator import Orchestrator
    from pipeline.messages import Question
    from pipeline.wiring import database
    from storage import repo

    say = console.print if console is not None else (lambda *a, **k: None)
    url, source = find_footage(cfg, video)
    say(f"[bold]XL-Watch demo[/bold]: footage {url} ({source})")
    _register(cfg, url)
    import ray

    own_ray = not ray.is_initialized()  # leave a Ray we joined (or a test's) running
    orch = Orchestrator(cfg)
    try:
        say("starting Ray and the actors (local, 127.0.0.1 only)...")
        orch.start()
        live = "://" in url
        say("ingesting: decode -> 1 fps -> CV events -> database "
            + (f"for {live_seconds:.0f} s of the live stream..." if live
               else "(this takes a minute)..."))
        if not orch.wait_idle(DEMO_CAMERA, live_seconds if live else timeout_s) and not live:
            say("[yellow]still ingesting; answering with what is stored so far[/yellow]")
        ray_alerts_flush(orch)
        answer = orch.ask(Question(DEMO_CAMERA, DEMO_QUESTION))
    finally:
        orch.stop()
        if own_ray and ray.is_initialized():
            ray.shutdown()
    db = database(cfg)
    with db.session() as s:
        events = [asdict(e) for e in repo.list_events(s, DEMO_CAMERA, limit=1000)]
        alerts = [asdict(a) for a in repo.list_alerts(s, after_id=0, camera=DEMO_CAMERA)]
    return DemoReport(url, source, db.url_masked, asdict(answer), events, alerts,
                      cfg.camera(DEMO_CAMERA).timezone, dashboard_url(cfg))


def dashboard_url(cfg: Any) -> str:
    """Where `xlwatch serve` with this config serves the dashboard (a wildcard bind is
    reachable on loopback)."""
    host = cfg.api.host if cfg.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{cfg.api.port}/"


def ray_alerts_flush(orch: Any) -> None:
    """Wait until the alert actor has handled every event already sent (FIFO mailbox)."""
    import ray

    if orch.alerts is not None:
        ray.get(orch.alerts.deliver_now.remote(), timeout=60)
