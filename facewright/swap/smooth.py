"""Temporal smoothing of landmarks so a swapped face does not jitter, and scene cuts it must not cross.

The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass whose cutoff rises with
the signal's speed: steady when the face is still (jitter removed), no lag when it moves fast. It runs on
arrays of any shape (68 x 2 landmarks, a 2 x 3 matrix), element by element, driven by timestamps in
seconds, so a variable frame rate is fine. `beta` multiplies a speed in the signal's units per second:
give it landmarks divided by the face size and one `beta` suits every resolution.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from facewright.errors import OptionError
from facewright.media.image import Frame

# Defaults for landmarks in face sizes at video rates: 1 Hz removes detector jitter on a still face;
# beta 2 raises the cutoff to 3 Hz at one face size per second (a quick head turn) and 7 Hz at three.
MIN_CUTOFF, BETA, D_CUTOFF = 1.0, 2.0, 1.0

# Scene cuts: HSV histograms (8 hue x 4 saturation x 4 value bins) of the 4 quadrants of a 64 x 36 thumbnail.
# The score is their total variation distance, averaged over quadrants: 0 = same colors in the same places,
# 1 = no color in common. Measured on the sample clips: consecutive frames <= 0.06, frames 10 apart of a
# moving shot <= 0.18; unrelated images 0.68-0.84, a frame against its own mirror image 0.31-0.73.
CUT_THRESHOLD = 0.35
_THUMB_WH, _GRID, _BINS = (64, 36), 2, (8, 4, 4)


def _alpha(dt: float, cutoff: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
    """Weight of the new sample in a first-order low-pass at `cutoff` Hz sampled `dt` seconds apart."""
    tau = 1.0 / (2 * math.pi * cutoff)  # the filter's time constant, seconds
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over same-shaped arrays. `min_cutoff` (Hz): the cutoff at rest, lower is steadier;
    `beta` (1 / signal unit): how much the cutoff rises per unit/second of speed; `d_cutoff` (Hz): the
    cutoff of the speed estimate itself."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, d_cutoff: float = D_CUTOFF):
        if not min_cutoff > 0 or not d_cutoff > 0 or not beta >= 0:
            raise OptionError(f"One Euro min_cutoff {min_cutoff}, beta {beta}, d_cutoff {d_cutoff}",
                              fix="use cutoffs > 0 Hz and a beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next value passes through unchanged."""
        self._time: float | None = None
        self._value: NDArray[np.float64] | None = None
        self._speed: NDArray[np.float64] | None = None

    def filter(self, t: float, x: ArrayLike) -> NDArray[np.floating]:
        """The smoothed value of `x` at time `t` (seconds, increasing), same shape; float32 in, float32 out."""
        x = np.asarray(x)
        dtype = np.result_type(x.dtype, np.float32)
        value = x.astype(np.float64)
        if self._value is None:
            self._time, self._value, self._speed = float(t), value, np.zeros_like(value)
            return value.astype(dtype)
        dt = self._step(t, value)
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(dt, self.d_cutoff) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + _alpha(dt, cutoff) * (value - self._value)
        self._time = float(t)
        return self._value.astype(dtype)

    def _step(self, t: float, value: NDArray[np.float64]) -> float:
        if value.shape != self._value.shape:
            raise ValueError(f"shape changed from {self._value.shape} to {value.shape}; reset() first")
        dt = float(t) - self._time
        if not dt > 0:
            raise ValueError(f"time {t} s is not after {self._time} s; reset() after a seek")
        return dt


def one_euro(times: Iterable[float], values: Iterable[ArrayLike], min_cutoff: float = MIN_CUTOFF,
             beta: float = BETA, d_cutoff: float = D_CUTOFF) -> list[NDArray[np.floating]]:
    """A whole sequence through one fresh `OneEuroFilter`: times in seconds, values all one shape."""
    smoother = OneEuroFilter(min_cutoff, beta, d_cutoff)
    return [smoother.filter(t, x) for t, x in zip(times, values, strict=True)]


class TrackSmoother:
    """One `OneEuroFilter` per face track; `cut()` at a scene cut so nothing is smoothed across it."""

    def __init__(self, min_cutoff: float = MIN_CUTOFF, beta: float = BETA, d_cutoff: float = D_CUTOFF):
        OneEuroFilter(min_cutoff, beta, d_cutoff)  # bad options fail here, not at the first frame
        self._options = (min_cutoff, beta, d_cutoff)
        self._filters: dict[Hashable, OneEuroFilter] = {}

    def smooth(self, track_id: Hashable, t: float, points: ArrayLike) -> NDArray[np.floating]:
        """The smoothed `points` of track `track_id` at time `t` seconds (a new track starts unsmoothed)."""
        if track_id not in self._filters:
            self._filters[track_id] = OneEuroFilter(*self._options)
        return self._filters[track_id].filter(t, points)

    def cut(self) -> None:
        """Forget every track."""
        self._filters.clear()

    @property
    def tracks(self) -> tuple[Hashable, ...]:
        return tuple(self._filters)


def cut_score(prev_frame: Frame, frame: Frame) -> float:
    """How different two frames' colors are, 0..1 (see CUT_THRESHOLD); each H x W x 3 RGB uint8, any size."""
    before, after = _histograms(prev_frame), _histograms(frame)
    return float(0.5 * np.abs(before - after).sum(axis=1).mean())


def is_cut(prev_frame: Frame, frame: Frame, threshold: float = CUT_THRESHOLD) -> bool:
    """Whether a hard scene cut lies between two frames: `cut_score` over `threshold`. Cheap: both are
    reduced to 64 x 36 thumbnails first. Quadrant color histograms ignore motion inside the picture."""
    return cut_score(prev_frame, frame) > threshold


def _histograms(frame: Frame) -> NDArray[np.float32]:
    """The normalized HSV histogram of each thumbnail quadrant: 4 x 128."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {getattr(frame, 'shape', type(frame))}")
    hsv = cv2.cvtColor(cv2.resize(frame, _THUMB_WH, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2HSV)
    cells = [cell for rows in np.array_split(hsv, _GRID, 0) for cell in np.array_split(rows, _GRID, 1)]
    ranges = [0, 180, 0, 256, 0, 256]  # 8-bit hue is degrees / 2
    counts = np.stack([cv2.calcHist([np.ascontiguousarray(c)], [0, 1, 2], None, list(_BINS), ranges).ravel()
                       for c in cells])
    return counts / counts.sum(axis=1, keepdims=True)
