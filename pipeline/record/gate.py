"""EventGate: which groups of pictures an `events`-mode camera keeps.

Packets arrive long before the CV analysis has looked at their frames (a chunk spans
16 s at 1 fps, plus the queue), so the gate holds whole GOPs (a keyframe and what
follows it) until the analysis has passed them by `pre_s`, then keeps each GOP that
overlaps an activity window widened by `pre_s` before and `post_s` after, and drops the
rest. An event still open holds its window open. Pure bookkeeping: no I/O, no threads;
the recorder calls it from its one writer thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.record.packets import PacketRecord


@dataclass
class _Gop:
    packets: list[PacketRecord] = field(default_factory=list)
    size: int = 0

    @property
    def start(self) -> float:
        return self.packets[0].wall

    @property
    def end(self) -> float:
        return self.packets[-1].wall


class EventGate:
    def __init__(self, pre_s: float, post_s: float, max_bytes: int = 256 * 2**20) -> None:
        self.pre_s, self.post_s, self.max_bytes = pre_s, post_s, max_bytes
        self.analysed_until = float("-inf")  # wall time the analysis has reached
        self.windows: list[tuple[float, float | None]] = []  # (start, end or None: open)
        self.packets_dropped = 0  # GOPs let go: no activity near them (or over max_bytes)
        self._gops: list[_Gop] = []
        self._held = 0

    def activity(self, start: float, end: float | None) -> None:
        """An event from `start` to `end` (None: still going on). A later call with the
        same start (the event's end) replaces the open window."""
        self.windows = [w for w in self.windows if not (w[0] == start and w[1] is None)]
        self.windows.append((start, end))

    def analysed(self, until: float) -> None:
        self.analysed_until = max(self.analysed_until, until)

    def push(self, pkt: PacketRecord) -> list[PacketRecord]:
        """Hold `pkt`; return the packets now decided to be kept, in order."""
        if pkt.keyframe or not self._gops:
            self._gops.append(_Gop())
        gop = self._gops[-1]
        gop.packets.append(pkt)
        gop.size += len(pkt.data)
        self._held += len(pkt.data)
        return self.decide()

    def decide(self, final: bool = False) -> list[PacketRecord]:
        """Release the GOPs the analysis has passed (every one if `final`)."""
        out: list[PacketRecord] = []
        while len(self._gops) > (0 if final else 1):  # the newest GOP may still grow
            gop = self._gops[0]
            over = self._held > self.max_bytes
            if not (final or over or gop.end + self.pre_s <= self.analysed_until):
                break
            self._gops.pop(0)
            self._held -= gop.size
            if self._wanted(gop.start, gop.end):  # over max_bytes: decided early
                out.extend(gop.packets)
            else:
                self.packets_dropped += len(gop.packets)
        self._forget_old()
        return out

    def _wanted(self, start: float, end: float) -> bool:
        for w_start, w_end in self.windows:
            hi = float("inf") if w_end is None else w_end + self.post_s
            if start <= hi and end >= w_start - self.pre_s:
                return True
        return False

    def _forget_old(self) -> None:
        """Windows every remaining GOP is past (bounded list)."""
        oldest = self._gops[0].start if self._gops else self.analysed_until
        self.windows = [w for w in self.windows
                        if w[1] is None or w[1] + self.post_s >= oldest - self.pre_s]
