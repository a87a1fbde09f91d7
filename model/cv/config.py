"""CVConfig: the CPU vision backend's settings, and the one definition of the config's
`cv` section (pipeline/config.py validates YAML straight into it). Imports nothing heavy,
so reading the config loads no OpenCV. Times are stream seconds, sizes analysis pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DETECTORS = ("nanodet", "hog")  # model/cv/detector.py builds them
_TEXT_FIELDS = ("detector", "detector_model")


@dataclass(frozen=True)
class CVConfig:
    # Validated by pydantic as the config tree's `cv` section: unknown keys refused.
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    motion_history: int = 120  # frames the background model remembers
    motion_var_threshold: float = 24.0
    motion_min_area: int = 150  # pixels, at analysis resolution
    motion_min_fraction: float = 0.002  # share of the frame that must move to count
    motion_gap_s: float = 3.0  # a motion event ends after this long without motion
    # More of the frame changed than this (or a brightness jump, in grey levels, with half
    # that): exposure or lights, not motion; the background is re-learnt, detection goes on.
    motion_relearn_fraction: float = 0.5
    motion_exposure_jump: float = 15.0
    hog_upscale: float = 2.0
    hog_min_score: float = 0.3
    hog_region_pad: float = 0.3  # context around a motion region, share of its size
    full_scan_every_s: float = 30.0  # whole-frame HOG for people standing still; 0: never
    nms_iou: float = 0.3
    track_iou: float = 0.2
    track_max_center_dist: float = 1.0  # box heights, for low frame rates
    track_max_age_s: float = 4.0  # unseen this long: the person left
    track_min_hits: int = 2  # detections before a track counts as a person
    track_high_score: float = 0.6  # detections below: only continue tracks (2nd stage)
    track_confirm_score: float = 0.85  # a moving detection this sure confirms at once
    track_tentative_age_s: float = 2.0  # an unconfirmed track unseen this long is dropped
    track_merge_share: float = 0.8  # a box this much inside another is the same person
    # Whole-frame detectors (NanoDet) run on every frame with motion or a live track, and
    # at least this often otherwise, so people standing still keep their tracks.
    detector_idle_scan_s: float = 5.0
    crowd_min_people: int = 5
    crowd_gap_s: float = 3.0
    loiter_s: float = 30.0
    tamper_enabled: bool = True
    tamper_gap_s: float = 2.0
    tamper_relearn_s: float = 60.0
    tamper_hold_s: float = 5.0  # the whole view must stay abnormal this long to alarm
    thumbnail_width: int = 320
    detector: str = "nanodet"  # person detector: "nanodet" (CNN via onnxruntime) or "hog"
    detector_model: str = ""  # NanoDet ONNX file; "": where `xlwatch model install-detector` puts it
    detector_min_score: float = 0.5  # NanoDet person score, 0..1 (HOG uses hog_min_score)
    detector_threads: int = 1  # onnxruntime intra-op threads for NanoDet

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if f.name in _TEXT_FIELDS:
                if not isinstance(value, str):
                    raise ValueError(f"{f.name}: must be a string; got {value!r}")
                continue
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{f.name}: must be a number >= 0; got {value!r}")
        for name in ("motion_relearn_fraction", "track_high_score", "track_confirm_score",
                     "track_merge_share"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name}: must be <= 1; got {getattr(self, name)!r}")
        for name in ("hog_upscale", "track_max_age_s", "track_min_hits", "crowd_min_people",
                     "thumbnail_width", "motion_history", "detector_threads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0; got {getattr(self, name)!r}")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector: must be one of {', '.join(map(repr, DETECTORS))}; "
                             f"got {self.detector!r}")
        if self.detector_min_score > 1:
            raise ValueError(f"detector_min_score: must be <= 1; got {self.detector_min_score!r}")
