"""Perceptual fingerprints of marked outputs: is the picture in hand the one a watermark's record was made on?

The watermark names a catalog record, and its pattern is public: anyone can lift it off one of our outputs
(subtract the original) and add it to another picture, which then names our record. So marking keeps in the
catalog a tiny grayscale thumbnail (THUMB x THUMB, aspect squashed) of every picture it marks (a video's frames
thinned to at most MAX_STORED, evenly spaced), and `verify` compares the file in hand with the thumbnails of
the record its watermark names.

The comparison registers the picture in hand on the thumbnails before scoring, because what the watermark
survives moves pixels: the 8 flips/rotations (mirror; 90, 180, 270 degrees), a small rotation (ROTATIONS, edges
cropped), and crops keeping KEEPS of each side anywhere in the picture (template matching over positions). The
score is the normalized cross-correlation (-1..1) of the best registration. For a video, the registration the
clip's frames share is found on a few probe frames, then each sampled frame in hand is scored against its
best-matching stored frame, and the clip's score is the median of those (a few frames of a fade or of another
clip spliced in do not decide it).

Why not a 64-bit DCT hash (pHash): measured on the sample photos and clip frames, a crop keeping 80% moved it by
14-28 of 63 bits and a 5 degree rotation by 12-24 bits, while two different photos were as close as 20 bits:
no threshold separates them. Figures for this score are in the README (`verify`: what a watermark proves).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import product

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.media.image import Frame

THUMB = 32  # pixels a side: 1 KB a picture; enough to register crops and small rotations
MAX_STORED = 1024  # thumbnails kept per video: neighbouring frames differ little, and a row stays under 1 MB
WORK = 96  # long side (pixels) a picture in hand is reduced to before registering it
KEEPS = (1.0, 0.9, 0.8, 0.7)  # share of each side a crop may keep (searched per axis)
ROTATIONS = (0.0, -5.0, 5.0)  # degrees of small rotation searched, besides the 8 flips/rotations
HAND_FRAMES = 24  # frames in hand scored per video
PROBES = 3  # frames in hand the registration is chosen on
PROBE_STORED = 64  # stored thumbnails the registration is searched against
SHORTLIST = 8  # poses found best on the first probe, then tried on every probe
FLAT = 2.0  # gray levels of standard deviation under which a picture has nothing to compare
# Verdicts on the score (see the README for the measured figures they come from):
SAME_AT = 0.86  # at or above: the same content (crops, rotations, re-encodes of it)
DIFFERENT_BELOW = 0.78  # below: different content; in between verify says it cannot tell

Thumbnail = NDArray[np.uint8]  # THUMB x THUMB grayscale
Thumbnails = NDArray[np.uint8]  # N x THUMB x THUMB grayscale


@dataclass(frozen=True)
class Pose:
    """How the picture in hand is registered on the stored thumbnails."""

    mirrored: bool
    quarter_turns: int  # counter-clockwise turns of the picture in hand undone before comparing
    degrees: float  # small rotation undone
    keep: tuple[float, float]  # (height, width) share of the stored picture the one in hand covers

    def describe(self) -> str:
        parts = (["mirrored"] if self.mirrored else []) + ([f"turned {90 * self.quarter_turns}"]
                                                         if self.quarter_turns else [])
        parts += [f"rotated {self.degrees:+g} degrees"] if self.degrees else []
        parts += [f"cropped to {self.keep[0]:.0%} x {self.keep[1]:.0%}"] if self.keep != (1.0, 1.0) else []
        return ", ".join(parts) or "as made"


@dataclass(frozen=True)
class Match:
    """The picture in hand against the thumbnails stored when its record was made."""

    score: float | None  # median best correlation over the frames compared (-1..1); None: nothing to compare
    frames: int  # frames in hand compared
    stored: int  # thumbnails stored in the record
    pose: Pose | None

    @property
    def verdict(self) -> str:
        """"same" | "different" | "unclear" (between the two thresholds, or nothing to compare)."""
        if self.score is None:
            return "unclear"
        return "same" if self.score >= SAME_AT else "different" if self.score < DIFFERENT_BELOW else "unclear"


# --- stored side ------------------------------------------------------------------------------------------


def thumbnail(image: Frame) -> Thumbnail:
    """THUMB x THUMB grayscale of an H x W x 3 uint8 RGB picture (area averaged, aspect squashed)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


class Recorder:
    """Thumbnails of the frames of one output as they are marked, thinned as they come (every frame until
    2 x MAX_STORED are held, then every 2nd, 4th...): an hour of video holds 2 MB, not 100."""

    def __init__(self) -> None:
        self.kept: list[Thumbnail] = []
        self.every = 1
        self.seen = 0

    def add(self, image: Frame) -> None:
        if self.seen % self.every == 0:
            self.kept.append(thumbnail(image))
            if len(self.kept) >= 2 * MAX_STORED:
                self.kept, self.every = self.kept[::2], self.every * 2
        self.seen += 1

    def packed(self) -> bytes | None:
        """`pack` of what was kept; None before the first frame."""
        return pack(self.kept) if self.kept else None


def pack(thumbs: Sequence[Thumbnail]) -> bytes:
    """The catalog's form: one byte THUMB, then the thumbnails (at most MAX_STORED, evenly spaced)."""
    if not thumbs:
        raise ValueError("no thumbnails to pack")
    picked = [thumbs[i] for i in _evenly(len(thumbs), MAX_STORED)]
    return bytes([THUMB]) + np.stack(picked).astype(np.uint8).tobytes()


def unpack(blob: bytes) -> Thumbnails:
    """The thumbnails `pack` wrote (N x THUMB x THUMB)."""
    size = blob[0]
    if size != THUMB or (len(blob) - 1) % (size * size):
        raise ValueError(f"not a facewright fingerprint of {THUMB}-pixel thumbnails")
    return np.frombuffer(blob, np.uint8, offset=1).reshape(-1, size, size)


def _evenly(count: int, limit: int) -> list[int]:
    """Indices of at most `limit` of `count` items, evenly spaced, first and last included."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


# --- the picture in hand ----------------------------------------------------------------------------------


class Sampler:
    """Keeps a small grayscale copy of each frame passing through (`watch`), for `compare` afterwards."""

    def __init__(self) -> None:
        self.frames: list[NDArray[np.float32]] = []

    def watch(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        for frame in frames:
            self.frames.append(working(frame))
            yield frame


def working(image: Frame) -> NDArray[np.float32]:
    """Grayscale, long side WORK pixels (never enlarged): what registration works on."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    scale = min(1.0, WORK / max(gray.shape))
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def compare(stored: Thumbnails, frames: Sequence[NDArray[np.float32]]) -> Match:
    """Score `frames` (working() copies of the pictures in hand, in order) against `stored` (see module doc)."""
    usable = [f for f in frames if float(f.std()) >= FLAT and min(f.shape) >= 8]
    if not usable or not len(stored):
        return Match(None, 0, len(stored), None)
    hand = [usable[i] for i in _evenly(len(usable), HAND_FRAMES)]
    mosaic = np.ascontiguousarray(stored.reshape(-1, THUMB).astype(np.float32))
    probe_mosaic = np.ascontiguousarray(stored[_evenly(len(stored), PROBE_STORED)].reshape(-1, THUMB)
                                        .astype(np.float32))
    probes = [hand[i] for i in _evenly(len(hand), PROBES)]
    middle = probes[len(probes) // 2]
    shortlist = sorted(_poses(), key=lambda p: _best(probe_mosaic, _template(middle, p)))[-SHORTLIST:]
    pose = max(shortlist, key=lambda p: float(np.median([_best(probe_mosaic, _template(f, p)) for f in probes])))
    scores = [_best(mosaic, _template(f, pose)) for f in hand]
    return Match(round(float(np.median(scores)), 4), len(hand), len(stored), pose)


def _poses() -> Iterator[Pose]:
    for mirrored, turns, degrees in product((False, True), range(4), ROTATIONS):
        for keep in product(KEEPS, KEEPS):
            yield Pose(mirrored, turns, degrees, keep)


def _template(frame: NDArray[np.float32], pose: Pose) -> NDArray[np.float32]:
    """`frame` with the pose undone, resized to the stored region it covers."""
    picture = _upright(frame, pose.mirrored, pose.quarter_turns, pose.degrees)
    size = (round(THUMB * pose.keep[1]), round(THUMB * pose.keep[0]))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def _upright(frame: NDArray[np.float32], mirrored: bool, turns: int, degrees: float) -> NDArray[np.float32]:
    """`frame` mirrored back, turned back and rotated back by `degrees`, its empty corners cropped off."""
    picture = np.ascontiguousarray(np.rot90(frame[:, ::-1] if mirrored else frame, -turns))
    if not degrees:
        return picture
    height, width = picture.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -degrees, 1.0)
    turned = cv2.warpAffine(picture, matrix, (width, height), flags=cv2.INTER_LINEAR)
    sine = abs(math.sin(math.radians(degrees)))
    cut_y, cut_x = math.ceil(width * sine / 2) + 1, math.ceil(height * sine / 2) + 1
    return np.ascontiguousarray(turned[cut_y:height - cut_y, cut_x:width - cut_x])


def _best(mosaic: NDArray[np.float32], template: NDArray[np.float32]) -> float:
    """Best correlation of `template` anywhere inside any one thumbnail of `mosaic` (thumbnails stacked)."""
    height, width = template.shape
    result = cv2.matchTemplate(mosaic, template, cv2.TM_CCOEFF_NORMED)
    count = mosaic.shape[0] // THUMB
    full = np.full((count * THUMB, result.shape[1]), -1.0, np.float32)
    full[:result.shape[0]] = np.nan_to_num(result, nan=-1.0)
    inside = full.reshape(count, THUMB, -1)[:, :THUMB - height + 1]  # windows within one thumbnail only
    return float(np.clip(inside.max(), -1.0, 1.0))
