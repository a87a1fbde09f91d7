"""Test helpers: short clips cut from the real footage, and configs on a temp data dir."""

from __future__ import annotations

from pathlib import Path

import av


def cut_clip(src: Path, dst: Path, seconds: float, fps: int = 10) -> Path:
    """The first `seconds` of `src` re-encoded as MPEG-4 Part 2 (real frames, short)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        first = True
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= seconds * fps:
                break
            if first:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
                first = False
            img = frame.to_ndarray(format="bgr24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def write_config(path: Path, data_dir: Path, port: int, extra: str = "") -> Path:
    path.write_text(
        f"data_dir: {data_dir}\n"
        f"allowed_roots: [{data_dir.parent}]\n"
        f"api:\n  host: 127.0.0.1\n  port: {port}\n"
        "ray:\n  num_cpus: 2\n"
        "alerts:\n  cooldown_s: 0\n  rules:\n    - name: person-any\n      kind: person\n"
        + extra
    )
    return path


def synthetic_clip(dst: Path, frames: int = 12, fps: int = 4, size: tuple[int, int] = (64, 48)
                   ) -> Path:
    """A small real MPEG-4 file of moving gradients (for tests that need any video)."""
    import numpy as np

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:, :, 1] = (np.arange(size[0]) * 4 + i * 10) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst
