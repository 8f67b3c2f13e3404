"""Per-frame identity checks: every face the swap replaces is covered by a check against the consent photo.

A track links faces by box overlap, so it cannot tell a person from another face pasted into their place.
Checking identity once per second would let every frame in between through; checking every frame with
dlib would cost ~100 ms a face. So, while the first pass scans the footage:
- each face is aligned as SFace sees it (a cheap warp) and compared with the track's previous frame: a
  jump in appearance (a paste, a hard cut the cut detector missed, a dissolve) calls for a check of both
  frames around it;
- besides, a check falls every 1 to CHECK_GAP frames of a track, at positions drawn at random per run, so
  they cannot be predicted from the frame numbers; the first and the last frame of a track are checked too;
- a check is SFace's similarity to the consent photo (~16 ms, independent of dlib, which chose the faces);
  when it is below SFace's threshold, dlib's distance breaks the tie (provenance/likeness.py).
A frame is swapped only when the checks on both sides of it pass (the nearest at or before it, and at or
after it). A check that fails on a face in profile, blurred or with closed eyes leaves its frames
untouched but does not count against the track; a track whose frontal, sharp faces mostly fail is not the
consenting person, and the swap is refused with the frames that failed.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.collect.quality import sharpness
from facewright.config import ExtractOptions
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import FaceLandmarks
from facewright.faces.sface import SFaceEncoder, align
from facewright.media.image import Frame
from facewright.provenance.likeness import Check, Reference, judge

CHECK_GAP = 4  # at most this many frames of a track from one check to the next
# Mean change of the 16 x 16 normalised gray face from one frame to the next that calls for a check. On the
# sample clips, a moving, talking face with hands passing over it changes by at most 0.21 (median 0.02);
# the faces of two people differ by 1.2 or more.
JUMP = 0.4
PROFILE_YAW, PROFILE_PITCH = 45.0, 35.0  # beyond these a failed check does not count against the track
EYES_CLOSED = 0.5
MIN_SHARPNESS = ExtractOptions().min_sharpness  # extraction's blur limit, on the same 256 px measure
MOST = 0.5  # share of judgeable checks failing beyond which a track is another person


@dataclass
class _Pending:
    """A track's last frame, kept until the next one arrives: it is checked if it turns out to be the last,
    or if the next frame jumps away from it."""

    frame: int
    crop: NDArray[np.uint8]  # SFace-aligned, 112 x 112 RGB
    looks: NDArray[np.float32]  # the 16 x 16 normalised gray face
    patch: Frame  # the face's neighbourhood in the frame, for dlib's tie-break
    box: tuple[float, float, float, float]  # the face's box inside `patch`
    judgeable: bool
    checked: bool = False


@dataclass
class TrackChecks:
    checks: list[Check] = field(default_factory=list)
    pending: _Pending | None = None
    countdown: int = 0  # frames until the next scheduled check


class IdentityChecker:
    """Checks the faces of every track as the footage is scanned (`see`), and the tracks' last frames at
    the end (`finish`). `rng`: where the check positions come from (default: drawn fresh for each run)."""

    def __init__(self, reference: Reference, sface: SFaceEncoder, dlib: IdentityEncoder,
                 rng: random.Random | None = None):
        self.reference, self.sface, self.dlib = reference, sface, dlib
        self.rng = rng or random.Random(random.SystemRandom().getrandbits(64))
        self.tracks: dict[int, TrackChecks] = {}
        self.seconds = 0.0  # spent aligning, comparing and checking: the cost of the checks

    def see(self, track: int, index: int, image: Frame, face: FaceLandmarks) -> None:
        start = time.perf_counter()
        self._see(self.tracks.setdefault(track, TrackChecks()), index, image, face)
        self.seconds += time.perf_counter() - start

    def _see(self, state: TrackChecks, index: int, image: Frame, face: FaceLandmarks) -> None:
        current = self._pending(index, image, face)
        previous = state.pending
        jumped = previous is not None and (previous.frame != index - 1
                                           or float(np.abs(current.looks - previous.looks).mean()) > JUMP)
        if jumped and not previous.checked:
            state.checks.append(self._check(previous))
        state.countdown -= 1
        if previous is None or jumped or state.countdown <= 0:
            state.checks.append(self._check(current))
            state.countdown = self.rng.randint(1, CHECK_GAP)
        state.pending = current

    def finish(self) -> dict[int, list[Check]]:
        """Every track's checks in frame order, its last frame checked."""
        start = time.perf_counter()
        for state in self.tracks.values():
            if state.pending is not None and not state.pending.checked:
                state.checks.append(self._check(state.pending))
            state.pending = None
        self.seconds += time.perf_counter() - start
        return {track: state.checks for track, state in self.tracks.items()}

    def _pending(self, index: int, image: Frame, face: FaceLandmarks) -> _Pending:
        crop = align(image, face.points68())
        gray = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
        gray = gray.astype(np.float32)
        looks = (gray - gray.mean()) / (gray.std() + 1e-6)
        patch, box = _neighbourhood(image, face.box)
        return _Pending(index, crop, looks, patch, box, _judgeable(face, crop))

    def _check(self, pending: _Pending) -> Check:
        pending.checked = True
        return judge(self.reference, self.sface, self.dlib, pending.frame, pending.crop, pending.patch, pending.box,
                     pending.judgeable)


def _judgeable(face: FaceLandmarks, crop: NDArray[np.uint8]) -> bool:
    yaw, pitch, _ = face.yaw_pitch_roll
    eyes = face.eyes_closed if len(face.blendshapes) else 0.0  # stored geometry has no blendshapes
    return (abs(yaw) <= PROFILE_YAW and abs(pitch) <= PROFILE_PITCH and eyes < EYES_CLOSED
            and sharpness(crop) >= MIN_SHARPNESS)


def _neighbourhood(image: Frame, box) -> tuple[Frame, tuple[float, float, float, float]]:
    """The face's box grown by its size on each side (what dlib's aligner needs), copied out of the frame,
    and the box in that copy's pixels: a whole frame need not be kept per track."""
    x0, y0, x1, y1 = (float(v) for v in box)
    grow = max(x1 - x0, y1 - y0)
    left, top = max(0, int(x0 - grow)), max(0, int(y0 - grow))
    right, bottom = min(image.shape[1], int(x1 + grow) + 1), min(image.shape[0], int(y1 + grow) + 1)
    return image[top:bottom, left:right].copy(), (x0 - left, y0 - top, x1 - left, y1 - top)


@dataclass(frozen=True)
class Verdict:
    """What the checks say about one track: the frames to leave untouched, and whether it is refused."""

    checks: int
    failed: tuple[int, ...]  # frames whose check failed
    untouched: frozenset[int]  # frames not swapped: a failed check on either side
    refused: bool  # most of its frontal, sharp faces are not the consenting person

    def describe(self) -> str:
        return f"{len(self.failed)} of {self.checks} identity checks failed, at frames {_ranges(self.failed)}"


def verdict(frames: list[int], checks: list[Check]) -> Verdict:
    """Judge a track (its frame indices in order) by its checks (in frame order)."""
    checks = sorted(checks, key=lambda c: c.frame)
    failed = tuple(c.frame for c in checks if not c.passed)
    judged = [c for c in checks if c.judgeable]
    against = sum(1 for c in judged if not c.passed)
    refused = bool(checks) and (against > MOST * len(judged) if judged else bool(failed))
    return Verdict(len(checks), failed, frozenset(_untouched(frames, checks)), refused)


def _untouched(frames: list[int], checks: list[Check]) -> set[int]:
    """Frames whose nearest check at or before them, or at or after them, failed (no check: untouched)."""
    if not checks:
        return set(frames)
    at = [c.frame for c in checks]
    ok = [c.passed for c in checks]
    untouched = set()
    for frame in frames:
        after = int(np.searchsorted(at, frame, side="left"))  # first check at or after the frame
        before = after if after < len(at) and at[after] == frame else after - 1
        sides = [ok[i] for i in (before, after) if 0 <= i < len(at)]
        if not sides or not all(sides):
            untouched.add(frame)
    return untouched


def _ranges(frames: tuple[int, ...], most: int = 8) -> str:
    """'3-7, 12, 40-41' for the first `most` runs of frame numbers."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][-1] + 1:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs[:most])
    return text + (f" and {len(runs) - most} more runs" if len(runs) > most else "")
