"""CPU ingest benchmark: decode + 1 fps sampling throughput per core, all frames versus
keyframes only, for 720p and 1080p H.264 clips generated here with PyAV.

Prints the command, then one JSON line per case. Throughput is per CPU-second of this
process with one decoder thread (`decode_threads=1`), i.e. per core:
- `decoded_fps`: frames decoded per CPU-second;
- `stream_x`: seconds of footage ingested per CPU-second (how many such cameras one core
  keeps up with at the sampling rate);
- `decode_only_cpu_s`: the same pass without converting kept frames (decode cost alone);
- `sampled_fps`: frames kept (resized to 384x384 RGB plus the 640-wide BGR copy) per
  CPU-second.

    python bench/ingest.py [--seconds 20] [--fps 1] [--gop 25] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.ingest.options import IngestOptions  # noqa: E402
from pipeline.ingest.reader import StreamReader  # noqa: E402
from pipeline.ingest.sampler import FrameSampler  # noqa: E402

SIZES = {"720p": (1280, 720, 2_000_000), "1080p": (1920, 1080, 4_000_000)}


def make_clip(path: Path, width: int, height: int, bitrate: int, seconds: float, fps: int,
              gop: int) -> Path:  # fmt: skip
    """Camera-like H.264 (High, no B-frames, fixed GOP, target bitrate): a noisy texture
    panning across the frame, so motion compensation and residuals are realistic."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height + 64, width + 256, 3), dtype=np.uint8)
    texture = texture // 4 + np.linspace(0, 190, width + 256, dtype=np.uint8)[None, :, None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.bit_rate = bitrate
        stream.options = {"preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0", "bf": "0"}  # fmt: skip
        for i in range(round(seconds * fps)):
            x, y = (3 * i) % 256, i % 64
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[y : y + height, x : x + width]), format="rgb24"
            )
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def run_case(clip: Path, resolution: str, keyframes_only: bool, fps: float, footage: float) -> dict:
    options = IngestOptions(fps=fps, keyframe_only=keyframes_only, decode_threads=1)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with StreamReader(str(clip), options, camera="bench") as reader:
        sampler = FrameSampler("bench", options, reader.timeline)
        chunks = list(sampler.chunks(reader.frames()))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert reader.info is not None
    cpu0 = time.process_time()
    with StreamReader(str(clip), options, camera="bench") as decoder:
        for _ in decoder.frames():  # decode only: no resize or copy
            pass
    decode_cpu = time.process_time() - cpu0
    return {
        "bench": "ingest_cpu",
        "resolution": resolution,
        "mode": "keyframes_only" if keyframes_only else "all_frames",
        "codec": reader.info.codec,
        "size": f"{reader.info.width}x{reader.info.height}",
        "native_fps": reader.info.native_fps,
        "sample_fps": fps,
        "footage_s": round(footage, 2),
        "frames_decoded": reader.frames_decoded,
        "frames_sampled": sampler.frames_sampled,
        "chunks": len(chunks),
        "cpu_s": round(cpu, 3),
        "decode_only_cpu_s": round(decode_cpu, 3),  # the rest of cpu_s is resize + copy
        "wall_s": round(wall, 3),
        "decoded_fps": round(reader.frames_decoded / cpu, 1),
        "sampled_fps": round(sampler.frames_sampled / cpu, 1),
        "stream_x": round(footage / cpu, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length")
    parser.add_argument("--fps", type=float, default=1.0, help="sampling rate")
    parser.add_argument("--gop", type=int, default=25, help="keyframe interval in frames")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; best is kept")
    parser.add_argument("--out", type=Path, default=None, help="where to keep the clips")
    args = parser.parse_args(argv)
    print("# " + shlex.join([sys.executable, *sys.argv]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, (width, height, bitrate) in SIZES.items():
            clip = make_clip(folder / f"{name}.mp4", width, height, bitrate, args.seconds,
                             25, args.gop)  # fmt: skip
            reference = None
            for keyframes_only in (False, True):
                runs = [
                    run_case(clip, name, keyframes_only, args.fps, args.seconds)
                    for _ in range(args.repeat)
                ]
                best = min(runs, key=lambda r: r["cpu_s"])
                if reference is None:
                    reference = best
                else:
                    best["speedup_vs_all_frames"] = round(reference["cpu_s"] / best["cpu_s"], 2)
                print(json.dumps(best), flush=True)


if __name__ == "__main__":
    main()
