"""Backpressure: a slow consumer makes ingest drop (and count) the oldest chunks; the
producer never blocks and memory stays bounded. Real decoding of a looped file."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from pipeline.ingest.backpressure import BoundedChunkQueue
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.supervisor import CameraIngest, next_backoff
from pipeline.messages import CameraState, FrameChunk


def make_chunk(seq: int, frames: int = 16) -> FrameChunk:
    return FrameChunk(
        camera="cam",
        seq=seq,
        times=tuple(float(seq * 16 + i) for i in range(frames)),
        wall_origin=0.0,
        model_frames=np.zeros((frames, 4, 4, 3), np.uint8),
        analysis_frames=np.zeros((frames, 2, 2, 3), np.uint8),
    )


def test_full_queue_drops_oldest_and_counts_its_frames():
    queue = BoundedChunkQueue(maxsize=2)
    assert queue.put(make_chunk(0)) is None and queue.put(make_chunk(1, frames=5)) is None
    dropped = queue.put(make_chunk(2))
    assert dropped is not None and dropped.seq == 0
    assert queue.put(make_chunk(3)).seq == 1
    assert (queue.chunks_dropped, queue.frames_dropped, len(queue)) == (2, 21, 2)
    assert [queue.get(0).seq, queue.get(0).seq, queue.get(0)] == [2, 3, None]


def test_closed_queue_wakes_a_waiting_consumer():
    queue = BoundedChunkQueue(maxsize=1)
    got: list = []
    consumer = threading.Thread(target=lambda: got.append(queue.get(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    queue.close()
    consumer.join(2)
    assert got == [None] and not consumer.is_alive()


@pytest.mark.slow
def test_slow_consumer_drops_are_counted_and_producer_never_blocks(h264_clip):
    consumed: list[int] = []
    longest_queue = 0

    def slow_consumer(chunk: FrameChunk) -> None:
        nonlocal longest_queue
        longest_queue = max(longest_queue, len(ingest.queue))
        consumed.append(chunk.seq)
        time.sleep(1.0)

    # fps=8 on a looped 25 fps file: a chunk every 2 s of footage, decoded much faster
    options = IngestOptions(fps=8.0, loop=True, max_in_flight=2, keyframe_only=False)
    ingest = CameraIngest("slowpoke", str(h264_clip), options, on_chunk=slow_consumer)
    ingest.start()
    deadline = time.monotonic() + 20
    while ingest.status().frames_dropped < 32 and time.monotonic() < deadline:
        time.sleep(0.05)
    mid = ingest.status()
    ingest.stop()
    end = ingest.status()
    assert mid.state == CameraState.LIVE and mid.frames_dropped >= 32
    # the producer kept going while the consumer sat in one call: it never waited
    assert len(consumed) <= mid.chunks_emitted - 2
    assert longest_queue <= 2  # bounded in flight
    dropped_chunks = ingest.queue.chunks_dropped
    assert end.frames_dropped == 16 * dropped_chunks
    assert len(consumed) + dropped_chunks + len(ingest.queue) == end.chunks_emitted
    assert consumed == sorted(consumed)
    assert end.state == CameraState.STOPPED


def test_consumer_exception_does_not_stop_ingest(h264_clip):
    calls: list[int] = []

    def failing(chunk: FrameChunk) -> None:
        calls.append(chunk.seq)
        raise RuntimeError("consumer bug")

    options = IngestOptions(fps=8.0, max_in_flight=8, keyframe_only=False)
    ingest = CameraIngest("buggy", str(h264_clip), options, on_chunk=failing)
    ingest.start()
    assert ingest.join(10)
    ingest.stop()
    assert ingest.status().state == CameraState.FINISHED
    assert len(calls) == ingest.callback_errors == ingest.status().chunks_emitted == 3


def test_backoff_doubles_from_5_to_60_seconds_by_default():
    options = IngestOptions()
    delays = [options.backoff_initial]
    for _ in range(6):
        delays.append(next_backoff(delays[-1], options))
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]


def test_file_read_once_waits_for_a_slow_consumer_instead_of_dropping(h264_clip):
    consumed: list[float] = []

    def slow(chunk: FrameChunk) -> None:
        time.sleep(0.2)
        consumed.extend(chunk.times)

    options = IngestOptions(fps=8.0, max_in_flight=1, keyframe_only=False)  # 3 chunks
    ingest = CameraIngest("archive", str(h264_clip), options, on_chunk=slow)
    ingest.start()
    assert ingest.join(timeout=15)
    ingest.stop()
    status = ingest.status()
    assert status.state == CameraState.FINISHED and status.frames_dropped == 0
    assert len(consumed) == 48 and consumed == sorted(consumed)


def test_interrupt_frees_a_producer_waiting_in_a_blocking_put():
    queue = BoundedChunkQueue(maxsize=1, block=True)
    queue.put(make_chunk(0))
    result: list = []
    producer = threading.Thread(target=lambda: result.append(queue.put(make_chunk(1))))
    producer.start()
    time.sleep(0.3)
    assert producer.is_alive()  # waiting for room
    queue.interrupt()
    producer.join(2)
    assert not producer.is_alive() and result[0].seq == 0 and queue.frames_dropped == 16


def test_memory_stays_bounded_when_nobody_consumes(h264_clip):
    """A looped file stands in for a live camera whose consumer has died: the queue keeps
    the newest `max_in_flight` chunks and numpy memory stays flat (tracemalloc)."""
    options = IngestOptions(
        fps=25.0, loop=True, max_in_flight=3, model_size=64, analysis_width=64, keyframe_only=False
    )
    chunk_bytes = 16 * (64 * 64 * 3 + 64 * 48 * 3)
    tracemalloc.start()
    try:
        ingest = CameraIngest("orphan", str(h264_clip), options)
        ingest.start()
        deadline = time.monotonic() + 20
        while ingest.status().chunks_emitted < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        ingest.stop()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    status = ingest.status()
    assert status.chunks_emitted >= 30
    assert len(ingest.queue) == 3
    assert ingest.queue.chunks_dropped == status.chunks_emitted - 3
    assert status.frames_dropped == 16 * ingest.queue.chunks_dropped
    assert current < 6 * chunk_bytes  # about the 3 queued chunks (30 would be 5x this)
