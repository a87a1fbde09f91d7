"""Chunks read back from the recording (pipeline.memory.redense) equal what ingest sampled.

Real parts: vtest.avi cut to 20 s, recorded through the ingest path the service runs
(the ingest actor's own class, without Ray), and the product's own reader and sampler
(`iter_chunks`) for the frames ingest gave the memory.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.ingest.supervisor import iter_chunks
from pipeline.memory.redense import ChunkTimes, RecordedChunks
from pipeline.record.layout import camera_dir, list_segments
from pipeline.wiring import database, ingest_options
from storage import repo
from tests.pipeline.record.recorded import footage, ingest_camera, recording_cfg


@pytest.mark.parametrize("keyframes", ["auto", "on"])
def test_frames_read_back_from_the_recording_are_the_frames_ingest_sampled(
        tmp_path, vtest_path, keyframes):
    """auto: every frame decoded (a keyframe every 1.2 s, sampled at 1 fps); on: the
    reader decodes keyframes only, and so does the read-back."""
    url = footage(tmp_path, vtest_path, seconds=20)
    cfg = recording_cfg(tmp_path)
    cfg = cfg.model_copy(update={"camera_defaults": cfg.camera_defaults.model_copy(
        update={"keyframes_only": keyframes})})
    assert ingest_camera(cfg, "lobby", url)["state"] == "finished"
    origin = list_segments(camera_dir(cfg.data_dir, "lobby"))[0].wall_start
    with database(cfg).session() as s:  # where the ingest placed its chunks in wall time
        rows = {r.seq: r for r in repo.list_chunks(s, "lobby")}
    options = ingest_options(cfg.camera_defaults)
    chunks = list(iter_chunks(str(url), options, "lobby"))
    # 20 s at 1 fps: one chunk and one group (keyframes only: 17 keyframes on the grid)
    assert [c.n_real for c in chunks] == ([16, 4] if keyframes == "auto" else [16, 1])
    recorded = RecordedChunks(cfg.data_dir, lambda cam: options)
    # each chunk's own wall origin, as the ingest's timeline stamped its row
    times = [ChunkTimes("lobby", c.seq, c.group_times, rows[c.seq].wall_start - c.start)
             for c in chunks]
    frames = recorded.frames(times)
    # keyframes only, the last chunk is 1 frame and 3 of padding: too little recorded
    assert sorted(frames) == ([0, 1] if keyframes == "auto" else [0])
    for chunk in (c for c in chunks if c.seq in frames):
        assert frames[chunk.seq].shape == chunk.model_frames.shape
        assert np.array_equal(frames[chunk.seq], chunk.model_frames), chunk.seq

    # footage the recording does not hold: left out (its question reads it coarse)
    late = ChunkTimes("lobby", 2, (20.0, 24.0, 28.0, 32.0), origin)
    half = ChunkTimes("lobby", 3, (12.0, 16.0, 20.0, 24.0), origin)  # 8 of 16 frames
    assert recorded.frames([late, half]) == {}
    assert recorded.frames([ChunkTimes("gate", 0, (0.0,), origin)]) == {}  # no recording
