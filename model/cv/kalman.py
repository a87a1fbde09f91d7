"""Kalman: a constant-velocity filter for one person's box, stepped by elapsed seconds.

State [cx, cy, w, h, vx, vy]: the box centre moves with a constant velocity (pixels per
second); width and height are a random walk. Sampling is 1-4 fps, so at each step the
prediction covers a quarter to several seconds; box-size velocities estimated from
jittery detector boxes that far apart are mostly noise, and an occluded person
extrapolated with one would shrink or balloon, so size has none. Noise scales with the
box height (a near, tall person moves more pixels per second than a far one). Plain
numpy; it knows nothing of detections or identities (tracker.py).
"""

from __future__ import annotations

import numpy as np

from model.cv.geometry import Box

# Standard deviations as shares of the box height: per sqrt(second) for the process
# (how far a walker's position and speed may change unannounced), per sample for the
# measurement (detector box jitter).
_Q_POS = 0.05
_Q_SIZE = 0.05
_Q_VEL = 0.5  # a walker may start, stop or turn within a second
_R_POS = 0.08
_R_SIZE = 0.12
_V0 = 1.0  # initial velocity uncertainty: unknown, up to about a box height per second
_H = np.hstack([np.eye(4), np.zeros((4, 2))])


class BoxKalman:
    """Filter of one track; `predict(t)` then `update(box)` at each sighting."""

    def __init__(self, box: Box, t: float) -> None:
        x, y, w, h = (float(v) for v in box)
        self.x = np.array([x + w / 2, y + h / 2, w, h, 0.0, 0.0])
        s = max(h, 1.0)
        self.P = np.diag(np.square([_R_POS * s, _R_POS * s, _R_SIZE * s, _R_SIZE * s,
                                    _V0 * s, _V0 * s]))
        self.t = t

    @property
    def velocity(self) -> tuple[float, float]:
        return float(self.x[4]), float(self.x[5])

    def box_at(self, t: float) -> Box:
        """The predicted box at t (no state change); at or before the filter's time, its
        current estimate."""
        dt = max(0.0, t - self.t)
        cx, cy = self.x[0] + self.x[4] * dt, self.x[1] + self.x[5] * dt
        return _to_box(cx, cy, self.x[2], self.x[3])

    def box(self) -> Box:
        return self.box_at(self.t)

    def predict(self, t: float) -> None:
        """Advance the state to time t (seconds); a no-op for t at or before the last."""
        dt = t - self.t
        if dt <= 0:
            return
        f = np.eye(6)
        f[0, 4] = f[1, 5] = dt
        s = max(self.x[3], 1.0)
        q = np.square([_Q_POS * s, _Q_POS * s, _Q_SIZE * s, _Q_SIZE * s, _Q_VEL * s,
                       _Q_VEL * s]) * dt
        self.x = f @ self.x
        self.P = f @ self.P @ f.T + np.diag(q)
        self.t = t

    def update(self, box: Box) -> None:
        """Correct the state with a measured box at the filter's current time."""
        x, y, w, h = (float(v) for v in box)
        z = np.array([x + w / 2, y + h / 2, w, h])
        s = max(h, 1.0)
        r = np.diag(np.square([_R_POS * s, _R_POS * s, _R_SIZE * s, _R_SIZE * s]))
        innov = z - _H @ self.x
        cov = _H @ self.P @ _H.T + r
        gain = self.P @ _H.T @ np.linalg.inv(cov)
        self.x = self.x + gain @ innov
        self.P = (np.eye(6) - gain @ _H) @ self.P
        self.x[2] = max(self.x[2], 1.0)
        self.x[3] = max(self.x[3], 1.0)


def _to_box(cx: float, cy: float, w: float, h: float) -> Box:
    w, h = max(float(w), 1.0), max(float(h), 1.0)
    return (int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))
