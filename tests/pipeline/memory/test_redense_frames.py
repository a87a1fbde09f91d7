"""Chunks read back from the recording (pipeline.memory.redense) equal what ingest sampled.

Real parts: vtest.avi cut to 20 s, recorded through the ingest path the service runs
(the ingest actor's own class, without Ray), and the product's own reader and sampler
(`iter_chunks`) for the frames ingest gave the memory.
"""

from __future__ import annotations

import numpy as np

from pipeline.ingest.supervisor import iter_chunks
from pipeline.memory.redense import ChunkTimes, RecordedChunks
from pipeline.record.layout import camera_dir, list_segments
from pipeline.wiring import ingest_options
from tests.pipeline.record.recorded import footage, ingest_camera, recording_cfg


def test_frames_read_back_from_the_recording_are_the_frames_ingest_sampled(tmp_path,
                                                                          vtest_path):
    url = footage(tmp_path, vtest_path, seconds=20)
    cfg = recording_cfg(tmp_path)
    assert ingest_camera(cfg, "lobby", url)["state"] == "finished"
    origin = list_segments(camera_dir(cfg.data_dir, "lobby"))[0].wall_start
    options = ingest_options(cfg.camera_defaults)
    chunks = list(iter_chunks(str(url), options, "lobby"))
    assert [c.n_real for c in chunks] == [16, 4]  # 20 s at 1 fps: one chunk and one group
    recorded = RecordedChunks(cfg.data_dir, options.model_size, lambda cam: options.interval)
    times = [ChunkTimes("lobby", c.seq, c.group_times, origin) for c in chunks]
    frames = recorded.frames(times)
    assert sorted(frames) == [0, 1]
    for chunk in chunks:
        assert frames[chunk.seq].shape == chunk.model_frames.shape
        assert np.array_equal(frames[chunk.seq], chunk.model_frames), chunk.seq

    # footage the recording does not hold: left out (its question reads it coarse)
    late = ChunkTimes("lobby", 2, (20.0, 24.0, 28.0, 32.0), origin)
    half = ChunkTimes("lobby", 3, (12.0, 16.0, 20.0, 24.0), origin)  # 8 of 16 frames
    assert recorded.frames([late, half]) == {}
    assert recorded.frames([ChunkTimes("gate", 0, (0.0,), origin)]) == {}  # no recording
