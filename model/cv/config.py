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
    # Detections below: only continue tracks (2nd stage). ByteTrack's split: a low box
    # (a person half hidden in a group, blurred) keeps a track going but starts none.
    track_high_score: float = 0.55
    track_confirm_score: float = 0.85  # a moving detection this sure confirms at once
    track_tentative_age_s: float = 2.0  # an unconfirmed track unseen this long is dropped
    track_merge_share: float = 0.8  # a box this much inside another is the same person
    # How far (box heights per second) a track seen once may have walked by its next
    # sample: it has no velocity yet. A brisk walk covers about one own height a second
    # (1.7 m tall, 1.4-1.8 m/s); at 1 fps the ordinary gate of one box height loses fast
    # walkers between their first and second sighting.
    track_new_speed: float = 1.5
    # Appearance (model/cv/appearance.py: torso and legs HSV histograms; similarity 0..1,
    # Bhattacharyya). Measured on vtest.avi at 1 fps (NanoDet tracks): one track one
    # sample later scores 0.93 at the median, 0.69 at the 5th percentile; two different
    # people 0.61 at the median, 0.85 at the 90th: a tie-breaker and a veto, too weak to
    # tell two people apart on its own.
    track_appearance_weight: float = 0.5  # cost added per unit of dissimilarity
    # A distance pair (or a continuation) looking less alike than this is refused: the
    # median of two different people, below what 95 % of one person's sightings score.
    track_appearance_gate: float = 0.6
    track_feature_weight: float = 0.3  # share of a new sighting in the track's EMA
    # A detection overlapping another this much (IoU) mixes two people's pixels: it does
    # not update the track's appearance.
    track_feature_occlusion_iou: float = 0.1
    # Recovery of a lost confirmed track (tracker stage 4): a leftover detection within
    # this many box heights (x sqrt(seconds unseen)) of its prediction or last position,
    # looking at least this alike, continues the track instead of starting a new person.
    # Twice the ordinary gate: at 1 fps a walker hidden behind another for 2 s is about 2
    # box heights from where they were seen, and the prediction is off when they turned;
    # the appearance check keeps the wider gate from grabbing a neighbour.
    track_recover_dist: float = 2.0
    track_recover_similarity: float = 0.8
    # Re-identification (model/cv/reid.py): a track is a person seen before (a re-entry:
    # still an entry, not a new person) when it looks at least this alike, this much more
    # than the next candidate, and that person was seen within memory_s. Whole tracks
    # (EMA) on vtest.avi: one person's two halves 0.94 at the median, 0.81 at the 10th
    # percentile; two people in view together 0.75 at the median, 0.92 at the 90th. The
    # margin only refuses near ties: in footage of people in dark coats a wider one
    # refuses most re-identifications (0.02 counted 14 people for 12 there, 0 counted 12).
    reid_min_similarity: float = 0.85
    reid_margin: float = 0.01
    reid_memory_s: float = 600.0  # clothes are a weak key over hours (and people change)
    reid_feature_weight: float = 0.5  # share of a finished track in the person's EMA
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
    # NanoDet person score, 0..1 (HOG uses hog_min_score). Kept low so that the tracker's
    # second stage has the half-hidden boxes to continue tracks with; only scores from
    # track_high_score up start a track, so clutter between the two starts nothing.
    detector_min_score: float = 0.4
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
                     "track_merge_share", "track_appearance_gate", "track_feature_weight",
                     "track_feature_occlusion_iou", "track_recover_similarity",
                     "reid_min_similarity", "reid_margin", "reid_feature_weight"):
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
