"""BoundedChunkQueue: the hand-off between a camera's ingest thread and its consumer.

Owns the in-flight bound: for a live camera `put` never blocks; when the queue is full
the OLDEST pending chunk is dropped and counted (chunks and the real frames they held),
because the newest footage is worth more than a backlog. A file read once is not live:
with `block=True` `put` waits for room instead (nothing would be gained by dropping
footage the operator can never see again) until `interrupt()` or `close()`, after which
it drops again, so stopping never hangs. It does not know what the consumer does.
"""

from __future__ import annotations

import threading
from collections import deque

from pipeline.messages import FrameChunk


class BoundedChunkQueue:
    def __init__(self, maxsize: int = 4, block: bool = False) -> None:
        if maxsize < 1:
            raise ValueError(f"queue maxsize={maxsize!r} must be >= 1")
        self.maxsize = maxsize
        self.block = block
        self._items: deque[FrameChunk] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.chunks_put = 0
        self.chunks_dropped = 0
        self.frames_dropped = 0

    def put(self, chunk: FrameChunk) -> FrameChunk | None:
        """Enqueue; return the chunk dropped to make room, if any (never blocks unless
        `block`, and then only until there is room, `interrupt()` or `close()`)."""
        with self._cond:
            while self.block and len(self._items) >= self.maxsize and not self._closed:
                self._cond.wait(0.2)
            dropped = None
            if len(self._items) >= self.maxsize:
                dropped = self._items.popleft()
                self.chunks_dropped += 1
                self.frames_dropped += dropped.n_real
            self._items.append(chunk)
            self.chunks_put += 1
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> FrameChunk | None:
        """The oldest pending chunk; None on timeout or when closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            item = self._items.popleft() if self._items else None
            self._cond.notify_all()  # room for a producer waiting in a blocking put
            return item

    def interrupt(self) -> None:
        """Stop waiting in `put` (drop oldest from now on), e.g. when ingest stops."""
        with self._cond:
            self.block = False
            self._cond.notify_all()

    def close(self) -> None:
        """Wake waiting consumers; pending chunks can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
