"""Occluders of any kind and training samples: `make_occluder` (one of KINDS, real from a bank or drawn) and
`occlude` (a face crop with 1..n occluders placed on or near the face, scaled to cover a share of it, some
casting a shadow).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.faces.types import Mask
from facewright.media.image import Frame
from facewright.train.occluders.cutouts import (
    KINDS,
    MIN_AREA,
    POOLS,
    Cutout,
    OccluderBank,
    box,
    check_kind,
    paste,
    place,
    real_occluder,
)
from facewright.train.occluders.drawn import DRAWN

# Hands and plain shapes are the commonest and most varied occluders in real footage; every kind stays
# frequent enough to be learned.
KIND_WEIGHTS = {"hand": 4.0, "face": 1.0, "patch": 1.5, "shape": 3.0, "strands": 1.5, "bar": 2.0, "glasses": 1.0,
                "cup": 1.0}
COVER = (0.05, 0.5)  # share of the face a sample's occluders cover, label-weighted
GOAL = (0.08, 0.42)  # total share aimed at, inside COVER so the fit's misses mostly stay inside it
FACE_TRIES = 16  # random draws inside the label's box to find a face pixel
ATTEMPTS = 8  # draws of a whole sample before giving up and returning it clean (a tiny or thin label)
FIT_STEPS = 3  # scale corrections per occluder to reach its share of the goal
FIT_SCALE = (0.25, 2.5)  # paste scales `occlude` may use on an occluder made for its size
FIXED_SCALE = ("strands", "glasses")  # sized by the face, not by the share to cover: strands stay thin
BORDER_ENTRY = 0.35  # how often an occluder comes in from the crop's border (a hand, a mic), not from inside
BORDER_SIDES = (0.4, 0.1, 0.25, 0.25)  # bottom, top, left, right: hands and mics mostly come from below
JITTER = 0.08  # of the size: how far from a face pixel an occluder's centre may be
SHADOW = 0.25  # how often an occluder casts a soft shadow (the face under a shadow is still face)
PALETTE = (48, 16)  # sample pixels from outside the face, and from anywhere, as colours for textures
_SIDES = np.cumsum(BORDER_SIDES)


def make_occluder(kind: str, size: int, rng: np.random.Generator, bank: OccluderBank | None = None,
                  palette: NDArray | None = None) -> Cutout | None:
    """One occluder of `kind` for an image (or a face) of side `size` px; None for a real kind whose pool is
    empty. `palette`: N x 3 uint8 sample pixels of the scene that textures may take colours from."""
    check_kind(kind)
    if size < 8:
        raise ValueError(f"make_occluder needs a size of at least 8 px, got {size}")
    palette = None if palette is None or not len(palette) else np.asarray(palette, np.uint8).reshape(-1, 3)
    if kind in POOLS:
        pool = bank.pool(kind) if bank is not None else []
        return real_occluder(pool[rng.integers(len(pool))], size, rng) if pool else None
    return DRAWN[kind](size, rng, palette)


def occlude(image: Frame, label: Mask, rng: np.random.Generator, bank: OccluderBank | None = None, *,
            clean: float = 0.2, most: int = 3, shadow: float = SHADOW) -> tuple[Frame, Mask, Mask]:
    """A training sample from a face crop and its face mask `label` (H x W float 0..1): with probability
    `clean` unchanged, else 1..`most` occluders of random kinds over the face, covering COVER of it (label-
    weighted), some casting a shadow (probability `shadow` each; shadows darken, they are not occluders).

    Returns (image, label * (1 - alpha), alpha of all occluders). A label too small or thin to be covered
    within COVER (after ATTEMPTS draws) gives the clean sample.
    """
    if label.shape != image.shape[:2]:
        raise ValueError(f"occlude needs a label of the image's size {image.shape[:2]}, got {label.shape}")
    if most < 1:
        raise ValueError(f"occlude needs most >= 1 occluders, got {most}")
    label = np.asarray(label, np.float32)
    face = float(label.sum())
    if rng.random() < clean or face < MIN_AREA:
        return image.copy(), label.copy(), np.zeros(label.shape, np.float32)
    draw = _Draw(image, label, face, rng, bank, shadow)
    for _ in range(ATTEMPTS):
        out, alpha = draw.sample(int(rng.integers(1, most + 1)))
        if COVER[0] <= float((label * alpha).sum()) / face <= COVER[1]:
            return out, label * (1.0 - alpha), alpha
    return image.copy(), label.copy(), np.zeros(label.shape, np.float32)


class _Draw:
    """One `occlude` call: what its attempts share (the kinds on offer, the palette, where the face is), and
    the drawing of one attempt. `face` is the label's sum."""

    def __init__(self, image: Frame, label: Mask, face: float, rng: np.random.Generator, bank: OccluderBank | None,
                 shadow: float):
        self.image, self.label, self.face, self.rng, self.bank, self.shadow = image, label, face, rng, bank, shadow
        self.size = max(image.shape[:2])
        self.kinds = [k for k in KINDS if k not in POOLS or (bank is not None and bank.pool(k))]
        self.cumulative = np.cumsum([KIND_WEIGHTS[k] for k in self.kinds])
        self.palette = _palette(image, label, rng)
        moments = cv2.moments(label)
        self.centroid = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
        rows, cols = box(label > 0)
        self.low = np.array([cols.start, rows.start], np.float64)
        self.high = np.array([cols.stop - 1, rows.stop - 1], np.float64)

    def sample(self, count: int) -> tuple[Frame, Mask]:
        """The image with `count` occluders pasted, sharing a random goal; the union of their alphas."""
        out, alpha = self.image, np.zeros(self.label.shape, np.float32)
        for goal in self.rng.dirichlet(np.ones(count)) * self.rng.uniform(*GOAL):
            kind = self.kinds[_pick(self.rng, self.cumulative)]
            occluder = make_occluder(kind, self.size, self.rng, self.bank, self.palette)
            centre = self._centre(kind)
            before, (out, a) = out, paste(out, occluder, centre, self._scale(occluder, centre, goal))
            if self.rng.random() < self.shadow:
                out = _shadow(before, out, a, self.rng, self.size)
            alpha = 1.0 - (1.0 - alpha) * (1.0 - a)
        return out, alpha

    def _centre(self, kind: str) -> tuple[float, float]:
        """On or near a face pixel; or, now and then, on the way in from the border towards the face."""
        rng = self.rng
        if kind == "glasses":
            return tuple(self.centroid + rng.normal(0, JITTER / 2 * self.size, 2))
        if rng.random() >= BORDER_ENTRY:
            return tuple(self._face_pixel() + rng.normal(0, JITTER * self.size, 2))
        height, width = self.label.shape
        x, y = rng.uniform(self.low, self.high)
        edge = np.array([(x, height - 1), (x, 0), (0, y), (width - 1, y)][_pick(rng, _SIDES)], np.float64)
        return tuple(edge + rng.uniform(0.1, 0.45) * (self.centroid - edge))

    def _face_pixel(self) -> NDArray[np.float64]:
        """(x, y) of a random pixel of the face (label >= 0.5), drawn inside the label's box; its centroid when
        FACE_TRIES draws miss (a thin or faint label)."""
        points = self.rng.uniform(self.low, self.high + 1, (FACE_TRIES, 2))
        hits = self.label[points[:, 1].astype(int), points[:, 0].astype(int)] >= 0.5
        return points[hits.argmax()] - 0.5 if hits.any() else self.centroid

    def _scale(self, occluder: Cutout, centre: tuple[float, float], goal: float) -> float:
        """The paste scale that makes the occluder cover about `goal` of the face from `centre`."""
        if occluder.kind in FIXED_SCALE:
            return float(self.rng.uniform(0.85, 1.15))
        scale = math.sqrt(goal * self.face / max(float(occluder.alpha.sum()), 1.0))
        for _ in range(FIT_STEPS):
            scale = min(max(scale, FIT_SCALE[0]), FIT_SCALE[1])
            covered = self._covered(occluder, centre, scale)
            if 0.7 * goal <= covered <= 1.4 * goal:
                break
            scale *= math.sqrt(goal / max(covered, 0.1 * goal))
        return min(max(scale, FIT_SCALE[0]), FIT_SCALE[1])

    def _covered(self, occluder: Cutout, centre: tuple[float, float], scale: float) -> float:
        placed = place(occluder, self.label.shape, centre, scale, 0.0, with_pixels=False)
        if placed is None:
            return 0.0
        region, a, _ = placed
        return float((self.label[region] * a).sum()) / self.face


def _shadow(before: Frame, after: Frame, alpha: Mask, rng: np.random.Generator, size: int) -> Frame:
    """`after` (= before * (1 - alpha) + occluder * alpha) with a soft offset shadow of the occluder darkening
    what still shows behind it."""
    shift = np.float64([[1, 0, 0], [0, 1, 0]])
    shift[:, 2] = rng.normal(0, 0.03 * size, 2)
    sigma, strength = rng.uniform(0.01, 0.04) * size, rng.uniform(0.15, 0.5)
    rows, cols = box(alpha > 0)  # the shadow reaches only so far from the occluder: work there
    reach = math.ceil(np.abs(shift[:, 2]).max() + 3 * sigma)
    rows = slice(max(0, (rows.start or 0) - reach), (rows.stop or alpha.shape[0]) + reach)
    cols = slice(max(0, (cols.start or 0) - reach), (cols.stop or alpha.shape[1]) + reach)
    a = alpha[rows, cols]
    shade = cv2.GaussianBlur(cv2.warpAffine(a, shift, a.shape[::-1]), (0, 0), sigma)
    dark = cv2.cvtColor(shade * (strength * (1.0 - a)), cv2.COLOR_GRAY2RGB) * before[rows, cols].astype(np.float32)
    out = after.copy()
    out[rows, cols] = np.rint(np.clip(after[rows, cols] - dark, 0, 255)).astype(np.uint8)
    return out


def _palette(image: Frame, label: Mask, rng: np.random.Generator) -> NDArray[np.uint8]:
    """N x 3 colours: pixels from outside the face (the scene) and some from anywhere."""
    flat = image.reshape(-1, 3)
    picks = rng.integers(0, len(flat), 3 * PALETTE[0] + PALETTE[1])
    outside = picks[PALETTE[1]:][label.ravel()[picks[PALETTE[1]:]] < 0.5][:PALETTE[0]]  # fewer if the face fills it
    return flat[np.concatenate([picks[:PALETTE[1]], outside])]


def _pick(rng: np.random.Generator, cumulative: NDArray) -> int:
    """An index drawn with weights given as their running sum (rng.choice with p=, ten times cheaper)."""
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(cumulative) - 1)
