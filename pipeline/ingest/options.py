"""Per-camera ingest options: a small frozen dataclass the service maps its config onto.

Owns defaults and validation of ingest knobs only; it does not read config files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class IngestOptions:
    fps: float = 1.0  # sampling rate (frames per second kept)
    model_size: int = 384  # model frames are model_size x model_size RGB, bicubic, no crop
    analysis_width: int | None = 640  # CV copy width (aspect kept); None: native width
    transport: Literal["tcp", "udp"] = "tcp"  # RTSP lower transport
    open_timeout: float = 10.0  # seconds to connect and read the stream header
    read_timeout: float = 10.0  # seconds without a packet (or a frame) before "stalled"
    decode_threads: int = 1  # decoder threads per camera (1: many cameras share few cores)
    keyframe_only: bool | None = None  # None: auto, when keyframe interval <= 1/fps
    loop: bool = False  # files: start again at the end, times continuing (a fake camera)
    realtime: bool = False  # files: pace frames at their native rate (a fake live camera)
    max_in_flight: int = 4  # chunks queued for the consumer before the oldest is dropped
    backoff_initial: float = 5.0  # reconnect backoff, doubling up to backoff_max
    backoff_max: float = 60.0
    max_clock_skew: float = 5.0  # live: re-anchor pts to the wall clock beyond this drift
    # epoch seconds of the camera's t = 0 from an earlier run (the first stored chunk), so
    # that stream time and wall times continue across restarts; None: a new origin now
    wall_origin: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "fps": self.fps > 0,
            "model_size": self.model_size >= 16,
            "analysis_width": self.analysis_width is None or self.analysis_width >= 16,
            "transport": self.transport in ("tcp", "udp"),
            "open_timeout": self.open_timeout > 0,
            "read_timeout": self.read_timeout > 0,
            "max_in_flight": self.max_in_flight >= 1,
            "decode_threads": self.decode_threads >= 0,
            "backoff_initial": self.backoff_initial > 0,
            "backoff_max": self.backoff_max >= self.backoff_initial,
            "max_clock_skew": self.max_clock_skew > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ingest option {name}={getattr(self, name)!r} is invalid")

    @property
    def interval(self) -> float:
        return 1.0 / self.fps
