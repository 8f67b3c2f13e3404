"""The watermark's lattice search: the repeating tile's period vectors, measured from the picture itself.

A pattern that repeats every `tile` pixels puts peaks in the autocorrelation of a picture's residual at its
two period vectors and their sums, turned and scaled as the copy was (rotated, straightened, cropped and
scaled back up, served smaller). Each strong peak, with its partner a quarter turn away, gives a matrix that
maps the copy's pixels back onto the pattern's grid; `refinements` are the small changes of scale and angle
tried around the best one. watermark.locate folds the residual through each and keeps the strongest sync.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

PERIODS = (0.4, 2.5)  # the tile periods searched, as multiples of the tile
CANDIDATES = 6  # autocorrelation peaks tried as the lattice's first period vector
REFINE = ((-0.006, -0.003, 0.0, 0.003, 0.006), (-0.4, -0.2, 0.0, 0.2, 0.4))  # relative scale, degrees
REFINEMENTS = len(REFINE[0]) * len(REFINE[1]) - 1  # matrices `refinements` gives (the estimate left out)


def candidates(res: NDArray[np.float64], tile: int) -> list[NDArray[np.float64]]:
    """Matrices (picture -> reference pixels) for the strongest period vectors in the residual's autocorrelation.

    A repeating tile puts peaks in the autocorrelation at its two period vectors and their sums, turned and
    scaled as the copy was. Each strong peak v1 is tried with the peak nearest v1 turned a quarter (v2); the
    matrix maps v1 to (tile, 0) and v2 to (0, tile).
    """
    height, width = res.shape
    centered = res - res.mean()
    spectrum = np.fft.rfft2(centered, s=(2 * height, 2 * width))
    acf = np.fft.fftshift(np.fft.irfft2(np.abs(spectrum) ** 2, s=(2 * height, 2 * width)))
    dy = np.arange(-height, height)[:, None]
    dx = np.arange(-width, width)[None, :]
    overlap = np.maximum((height - np.abs(dy)) * (width - np.abs(dx)), 1).astype(np.float64)
    acf = acf / overlap
    acf -= cv2.GaussianBlur(acf, (0, 0), 3.0)
    radius = np.hypot(dy, dx)
    low, high = PERIODS[0] * tile, min(PERIODS[1] * tile, 0.7 * max(height, width))
    usable = (radius >= low) & (radius <= high) & ((dx > 0) | ((dx == 0) & (dy > 0)))
    usable &= (np.abs(dy) < 0.8 * height) & (np.abs(dx) < 0.8 * width)
    if not usable.any():  # a picture too small to hold two periods of any tile size searched
        return []
    spread = 1.4826 * np.median(np.abs(acf[usable])) + 1e-12
    score = np.where(usable, acf / spread, -np.inf).astype(np.float32)
    peaks = (score == cv2.dilate(score, np.ones((5, 5), np.uint8))) & np.isfinite(score)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-score[ys, xs])[:CANDIDATES]
    matrices = []
    for i in order:
        v1 = _subpixel(score, ys[i], xs[i]) - (height, width)
        v1 = np.array([v1[1], v1[0]])  # (x, y)
        v2 = _partner(score, v1, (height, width))
        if v1[0] * v2[1] - v1[1] * v2[0] < 0:  # -v2 is a period too: keep the basis a turn, not a mirror
            v2 = -v2
        if _square(v1, v2):
            matrices.append(tile * np.linalg.inv(np.column_stack([v1, v2])))
    return matrices


def _subpixel(score: NDArray[np.float64], y: int, x: int) -> NDArray[np.float64]:
    """Peak position refined by a parabola through its neighbours in each axis, as (y, x)."""
    def offset(minus: float, mid: float, plus: float) -> float:
        if not (np.isfinite(minus) and np.isfinite(plus)):
            return 0.0
        denom = minus - 2 * mid + plus
        return 0.0 if denom >= 0 else float(np.clip(0.5 * (minus - plus) / denom, -0.5, 0.5))
    h, w = score.shape
    oy = offset(score[y - 1, x], score[y, x], score[y + 1, x]) if 0 < y < h - 1 else 0.0
    ox = offset(score[y, x - 1], score[y, x], score[y, x + 1]) if 0 < x < w - 1 else 0.0
    return np.array([y + oy, x + ox])


def _partner(score: NDArray[np.float64], v1: NDArray[np.float64], center: tuple[int, int]) -> NDArray[np.float64]:
    """The period vector a quarter turn from v1: the strongest peak within 4% of v1 turned, else v1 turned."""
    guess = np.array([-v1[1], v1[0]])
    if guess[0] < 0 or (guess[0] == 0 and guess[1] < 0):
        guess = -guess  # the autocorrelation is symmetric: look in the half searched
    reach = max(2, int(round(0.04 * np.hypot(*v1))))
    cy, cx = int(round(center[0] + guess[1])), int(round(center[1] + guess[0]))
    h, w = score.shape
    y0, y1, x0, x1 = max(0, cy - reach), min(h, cy + reach + 1), max(0, cx - reach), min(w, cx + reach + 1)
    window = score[y0:y1, x0:x1]
    if window.size == 0 or not np.isfinite(window).any():
        return guess
    y, x = np.unravel_index(int(np.argmax(np.where(np.isfinite(window), window, -np.inf))), window.shape)
    found = _subpixel(score, y0 + y, x0 + x) - center
    return np.array([found[1], found[0]])


def _square(v1: NDArray[np.float64], v2: NDArray[np.float64]) -> bool:
    """Whether two period vectors can be a square tile's, turned and scaled (and squeezed by at most 10%)."""
    n1, n2 = float(np.hypot(*v1)), float(np.hypot(*v2))
    if min(n1, n2) < 1.0 or not 0.9 < n2 / n1 < 1.1:
        return False
    return abs(float(v1 @ v2)) / (n1 * n2) < math.sin(math.radians(6))  # within 6 degrees of a right angle


def refinements(matrix: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Small changes of scale and rotation around a lattice estimate (the estimate itself left out)."""
    out = []
    for ds in REFINE[0]:
        for da in REFINE[1]:
            if ds == 0 and da == 0:
                continue
            a = math.radians(da)
            turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            out.append((1 + ds) * turn @ matrix)
    return out
