"""CVConfig: the CPU vision backend's settings, and the one definition of the config's
`cv` section (pipeline/config.py validates YAML straight into it). Imports nothing heavy,
so reading the config loads no OpenCV. Times are stream seconds, sizes analysis pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CVConfig:
    # Validated by pydantic as the config tree's `cv` section: unknown keys refused.
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    motion_history: int = 120  # frames the background model remembers
    motion_var_threshold: float = 24.0
    motion_min_area: int = 150  # pixels, at analysis resolution
    motion_min_fraction: float = 0.002  # share of the frame that must move to count
    motion_gap_s: float = 3.0  # a motion event ends after this long without motion
    hog_upscale: float = 2.0
    hog_min_score: float = 0.3
    hog_region_pad: float = 0.3  # context around a motion region, share of its size
    full_scan_every_s: float = 30.0  # whole-frame HOG for people standing still; 0: never
    nms_iou: float = 0.3
    track_iou: float = 0.2
    track_max_center_dist: float = 1.0  # box heights, for low frame rates
    track_max_age_s: float = 4.0  # unseen this long: the person left
    track_min_hits: int = 2  # detections before a track counts as a person
    crowd_min_people: int = 5
    crowd_gap_s: float = 3.0
    loiter_s: float = 30.0
    tamper_enabled: bool = True
    tamper_gap_s: float = 2.0
    tamper_relearn_s: float = 60.0
    thumbnail_width: int = 320

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{f.name}: must be a number >= 0; got {value!r}")
        for name in ("hog_upscale", "track_max_age_s", "track_min_hits", "crowd_min_people",
                     "thumbnail_width", "motion_history"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0; got {getattr(self, name)!r}")
