"""Sampling and chunking from real files (vtest.avi and H.264 clips made with PyAV)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.ingest.options import IngestOptions
from pipeline.ingest.reader import StreamReader
from pipeline.ingest.sampler import FrameSampler, analysis_size
from pipeline.ingest.supervisor import iter_chunks
from tests.rtsp import make_h264_clip


def sample_times(path: Path, options: IngestOptions) -> tuple[list[float], StreamReader]:
    with StreamReader(str(path), options) as reader:
        sampler = FrameSampler("cam", options, reader.timeline)
        times = [t for c in sampler.chunks(reader.frames()) for t in c.times]
    return times, reader


def test_vtest_avi_samples_to_80_frames_at_1fps_in_16_frame_chunks(vtest_path):
    chunks = list(iter_chunks(str(vtest_path), IngestOptions(fps=1.0), camera="lobby"))
    times = [t for c in chunks for t in c.times]
    assert len(times) == 80
    assert times == sorted(times) and times[0] == 0.0
    assert np.allclose(np.diff(times), 1.0)
    assert [c.n_real for c in chunks] == [16] * 5
    assert [c.seq for c in chunks] == list(range(5))
    assert all(c.camera == "lobby" for c in chunks)
    first = chunks[0]
    assert first.model_frames.shape == (16, 384, 384, 3) and first.model_frames.dtype == np.uint8
    assert first.analysis_frames.shape == (16, 480, 640, 3)  # 768x576 at width 640
    assert first.group_times == (0.0, 4.0, 8.0, 12.0)


def test_25fps_file_samples_one_frame_per_second(h264_clip):
    times, reader = sample_times(h264_clip, IngestOptions(keyframe_only=False))
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert reader.frames_decoded == 150


def test_keyframe_only_gives_same_times_and_decodes_fewer_frames(h264_clip):
    all_times, all_reader = sample_times(h264_clip, IngestOptions(keyframe_only=False))
    key_times, key_reader = sample_times(h264_clip, IngestOptions(keyframe_only=True))
    auto_times, auto_reader = sample_times(h264_clip, IngestOptions(keyframe_only=None))
    assert key_times == all_times == auto_times
    assert key_reader.frames_decoded == 6 < all_reader.frames_decoded == 150
    assert auto_reader.frames_decoded < all_reader.frames_decoded  # switched on by itself
    assert auto_reader.keyframe_interval == pytest.approx(1.0)


def test_auto_mode_keeps_decoding_all_frames_when_keyframes_are_sparse(tmp_path):
    clip = make_h264_clip(tmp_path / "sparse.mp4", seconds=4.0, gop=50)  # key every 2 s
    times, reader = sample_times(clip, IngestOptions(keyframe_only=None))
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert reader.frames_decoded == 100 and not reader.keyframes_only


def test_partial_last_chunk_is_padded_by_repeating_its_last_frame(h264_clip):
    (chunk,) = list(iter_chunks(str(h264_clip)))
    assert chunk.n_real == 6
    assert chunk.model_frames.shape[0] == 8 and chunk.analysis_frames.shape[0] == 6
    assert np.array_equal(chunk.model_frames[6], chunk.model_frames[5])
    assert np.array_equal(chunk.model_frames[7], chunk.model_frames[5])
    assert not np.array_equal(chunk.model_frames[4], chunk.model_frames[5])
    assert chunk.group_times == (0.0, 4.0)


def test_model_copy_is_rgb_and_analysis_copy_is_bgr(tmp_path):
    path = tmp_path / "red.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=2)  # lossless: exact colours
        stream.width, stream.height, stream.pix_fmt = 200, 100, "bgr0"
        img = np.zeros((100, 200, 3), np.uint8)
        img[..., 0] = 250  # red in RGB
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    (chunk,) = list(iter_chunks(str(path), IngestOptions(analysis_width=100)))
    model, analysis = chunk.model_frames[0], chunk.analysis_frames[0]
    assert model[..., 0].mean() > 240 and model[..., 2].mean() < 10  # R first
    assert analysis[..., 2].mean() > 240 and analysis[..., 0].mean() < 10  # B first
    assert analysis.shape == (50, 100, 3)  # aspect kept


@pytest.mark.parametrize(
    ("size", "width", "expected"),
    [
        ((768, 576), 640, (640, 480)),
        ((1920, 1080), 640, (640, 360)),
        ((320, 240), None, (320, 240)),
    ],
)
def test_analysis_size_keeps_aspect_and_even_height(size, width, expected):
    assert analysis_size(*size, width) == expected


def test_sampling_grid_skips_gaps_but_keeps_its_phase():
    sampler = FrameSampler("cam", IngestOptions(fps=1.0))
    kept = [t for t in (0.0, 0.5, 1.0, 1.5, 4.3, 4.9, 5.0, 5.2) if sampler.want(t)]
    assert kept == [0.0, 1.0, 4.3, 5.0]


def test_looped_file_keeps_times_increasing_across_the_loop(h264_clip):
    options = IngestOptions(loop=True, keyframe_only=False)
    chunks = list(itertools.islice(iter_chunks(str(h264_clip), options), 2))
    times = [t for c in chunks for t in c.times]
    assert len(times) == 32
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[:7] == pytest.approx([0, 1, 2, 3, 4, 5, 6])  # 6.0 = first frame of loop 2


def test_realtime_file_is_paced_like_a_live_camera(tmp_path):
    clip = make_h264_clip(tmp_path / "short.mp4", seconds=1.2)
    started = time.monotonic()
    chunks = list(iter_chunks(str(clip), IngestOptions(realtime=True)))
    assert time.monotonic() - started >= 1.1  # 30 frames at 25 fps: 1.16 s of footage
    assert [t for c in chunks for t in c.times] == [0.0, 1.0]


def test_invalid_options_name_the_field():
    with pytest.raises(ValueError, match="fps=0"):
        IngestOptions(fps=0)
    with pytest.raises(ValueError, match="backoff_max"):
        IngestOptions(backoff_initial=5.0, backoff_max=1.0)
