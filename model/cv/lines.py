"""Lines: counting people who cross a camera's count lines, from their tracks.

`CountLine` is a camera setting (validated by pydantic as an entry of a camera's
`count_lines`): two points in normalised frame coordinates (0..1, x right, y down), a
name, the side that is "in" (`left` or `right` as seen walking from the first point to
the second, on the image), and which point of a person's box crosses it (`center` for
overhead cameras, `bottom` — the feet — for side views of a doorway or a floor line).

`LineCounter` follows every track's anchor point and decides when a path crossed a line:
the point must move from one side to the other by more than a dead band (a share of the
box height: detector jitter near the line is no crossing) and through the segment
itself, not its extension. Each track counts each direction at most once per line, so a
person standing on the line never counts twice. Crossings seen before a track was
confirmed wait until it is (a fast pass confirms late) and are forgotten if it never is.
Pure Python: it imports no OpenCV and builds no events (analyzer.py does).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from model.cv.geometry import Box

_SIDES = ("left", "right")
_ANCHORS = ("center", "bottom")
DEAD_BAND = 0.15  # box heights either side of a line where no side is decided


@dataclass(frozen=True)
class CountLine:
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    name: str
    points: tuple[tuple[float, float], tuple[float, float]]
    in_side: str = "right"
    anchor: str = "center"

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise ValueError(f"name: must be 1-64 characters; got {self.name!r}")
        if len(self.points) != 2 or any(len(p) != 2 for p in self.points):
            raise ValueError(f"points: must be two (x, y) points; got {self.points!r}")
        if any(not (0.0 <= v <= 1.0) for p in self.points for v in p):
            raise ValueError(f"points: coordinates must lie in 0..1; got {self.points!r}")
        if self.points[0] == self.points[1]:
            raise ValueError(f"points: the two points must differ; got {self.points!r}")
        for f in fields(self):
            allowed = {"in_side": _SIDES, "anchor": _ANCHORS}.get(f.name)
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"{f.name}: must be one of {', '.join(allowed)}; "
                                 f"got {getattr(self, f.name)!r}")

    def side(self, x: float, y: float, width: int, height: int) -> float:
        """Signed distance of pixel point (x, y) from the line, in pixels; > 0 on the
        right (walking from the first point to the second, on the image)."""
        (x0, y0), (x1, y1) = ((px * width, py * height) for px, py in self.points)
        dx, dy = x1 - x0, y1 - y0
        return (dx * (y - y0) - dy * (x - x0)) / max((dx * dx + dy * dy) ** 0.5, 1e-9)

    def hits_segment(self, a: tuple[float, float], b: tuple[float, float], width: int,
                     height: int) -> bool:
        """Whether the path a -> b (pixels) meets the line within its two points."""
        (x0, y0), (x1, y1) = ((px * width, py * height) for px, py in self.points)
        rx, ry = x1 - x0, y1 - y0
        sx, sy = b[0] - a[0], b[1] - a[1]
        den = rx * sy - ry * sx
        if abs(den) < 1e-9:
            return False
        u = ((a[0] - x0) * sy - (a[1] - y0) * sx) / den  # position along the line, 0..1
        return -0.02 <= u <= 1.02


@dataclass(frozen=True)
class Crossing:
    line: str
    direction: str  # "in" or "out"
    track_id: int
    t: float
    bbox: Box


@dataclass
class _Path:
    side: dict[str, int] = field(default_factory=dict)  # line -> -1 / +1, last decided
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # where it was decided
    counted: set[tuple[str, str]] = field(default_factory=set)  # (line, direction)
    pending: list[Crossing] = field(default_factory=list)  # before confirmation


class LineCounter:
    """Per-stream line state: feed it the tracks seen at each frame time."""

    def __init__(self, lines: tuple[CountLine, ...] | list[CountLine] = ()) -> None:
        names = [ln.name for ln in lines]
        if len(set(names)) != len(names):
            raise ValueError(f"count_lines: names must be unique; got {names!r}")
        self.lines = tuple(lines)
        self.counts = {ln.name: {"in": 0, "out": 0} for ln in self.lines}
        self._paths: dict[int, _Path] = {}

    def observe(self, track_id: int, box: Box, t: float, confirmed: bool,
                frame_size: tuple[int, int]) -> list[Crossing]:
        """A track's box at t; returns the crossings it now counts (confirmed only)."""
        if not self.lines:
            return []
        path = self._paths.setdefault(track_id, _Path())
        width, height = frame_size
        x, y, w, h = box
        band = DEAD_BAND * h
        for line in self.lines:
            px = x + w / 2
            py = y + h if line.anchor == "bottom" else y + h / 2
            dist = line.side(px, py, width, height)
            if abs(dist) <= band:
                continue
            now = 1 if dist > 0 else -1
            before = path.side.get(line.name)
            if before is not None and now != before and line.hits_segment(
                    path.at[line.name], (px, py), width, height):
                into = "right" if now > 0 else "left"
                direction = "in" if into == line.in_side else "out"
                if (line.name, direction) not in path.counted:
                    path.counted.add((line.name, direction))
                    path.pending.append(Crossing(line.name, direction, track_id, t, box))
            path.side[line.name], path.at[line.name] = now, (px, py)
        if not confirmed:
            return []
        out, path.pending = path.pending, []
        for c in out:
            self.counts[c.line][c.direction] += 1
        return out

    def forget(self, track_id: int) -> None:
        """The track ended (or was dropped unconfirmed): its pending crossings go too."""
        self._paths.pop(track_id, None)

    def forget_all_but(self, alive: set[int]) -> None:
        for tid in [t for t in self._paths if t not in alive]:
            del self._paths[tid]
