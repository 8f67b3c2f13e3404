"""The first pass over footage: every face in every frame, linked into tracks, shot by shot.

A track is one person's face through consecutive frames of one shot: a scene cut starts new tracks, so
nothing (identity, smoothing, color statistics) is ever carried across a cut. Each track keeps its raw
68-point landmarks per frame, a few identity embeddings (one per `EMBED_EVERY` frames: identity does not
change within a track) and a few aligned crops (for per-track color statistics, which do not flicker the
way per-frame ones do). The swap then picks tracks by identity and smooths their landmarks over time.
With an IdentityChecker, every track's faces are also checked against the consent photo as they are
scanned (identity.py).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.faces.align import alignment_matrix
from facewright.faces.identity import Embedding, IdentityEncoder, pairwise_distance
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.faces.mask import face_size
from facewright.faces.track import Tracker
from facewright.faces.types import Detection, Points
from facewright.media.image import Frame
from facewright.media.video import VideoFrame
from facewright.prefetch import close_source
from facewright.provenance.likeness import Check
from facewright.swap.identity import IdentityChecker
from facewright.swap.smooth import is_cut, one_euro

EMBED_EVERY = 30  # frames between identity samples of a track
SAMPLE_EVERY = 12  # frames between the crops kept for a track's color statistics
MAX_SAMPLES = 16
MAX_GAP = 15  # frames a face may vanish (a hand passing) and still continue its track


@dataclass
class FaceTrack:
    """One person's face through one shot. `frames`, `times`, `points` are parallel lists in frame order."""

    id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds
    points: list[Points] = field(default_factory=list, repr=False)  # 68 x 2 frame pixels, as detected
    embeddings: list[Embedding] = field(default_factory=list, repr=False)
    samples: list[NDArray[np.uint8]] = field(default_factory=list, repr=False)  # aligned crops, S x S x 3
    sample_every: int = SAMPLE_EVERY  # frames between samples; doubles whenever MAX_SAMPLES are held
    checks: list[Check] = field(default_factory=list, repr=False)  # identity checks against the consent photo

    def distance(self, references: NDArray[np.float32]) -> float:
        """Median over this track's embeddings of the distance to the nearest reference (inf: none to compare)."""
        if not self.embeddings or len(references) == 0:
            return float("inf")
        return float(np.median(pairwise_distance(np.stack(self.embeddings), references).min(axis=1)))

    def smoothed(self, min_cutoff: float, beta: float) -> list[Points]:
        """The landmarks through a One Euro filter, in units of the face's size so `beta` means the same at
        any resolution; min_cutoff <= 0 gives the raw points."""
        if min_cutoff <= 0:
            return list(self.points)
        size = max(1.0, float(np.median([face_size(p) for p in self.points])))
        times = np.maximum.accumulate(np.asarray(self.times, np.float64))  # a damaged file may repeat a time:
        times = times + np.arange(len(times)) * 1e-6  # nudge it forward, the filter needs increasing times
        return [p * size for p in one_euro(times, [p / size for p in self.points], min_cutoff, beta)]


@dataclass
class Footage:
    tracks: list[FaceTrack]
    cuts: list[int]  # frame indices that start a new shot (after the first)
    frames: int


class FootageScanner:
    """Feed it every frame in order (`add`); `footage()` gives the tracks. Crops for color statistics are
    aligned as the model's (`resolution`, `face_type`)."""

    def __init__(self, encoder: IdentityEncoder, resolution: int, face_type: str, cut_threshold: float,
                 checker: IdentityChecker | None = None):
        self.encoder, self.resolution, self.face_type = encoder, resolution, face_type
        self.cut_threshold, self.checker = cut_threshold, checker
        self.tracks: list[FaceTrack] = []
        self.cuts: list[int] = []
        self.frames = 0
        self._tracker = Tracker(max_gap=MAX_GAP)
        self._shot: dict[int, FaceTrack] = {}  # the tracker's ids in this shot -> tracks
        self._previous: Frame | None = None

    def add(self, index: int, time: float, image: Frame, faces: list[FaceLandmarks]) -> None:
        if self._previous is not None and is_cut(self._previous, image, self.cut_threshold):
            self.cuts.append(index)
            self._tracker, self._shot = Tracker(max_gap=MAX_GAP), {}
        self._previous = image
        self.frames += 1
        ids = self._tracker.update(index, [Detection(face.box, 1.0) for face in faces])
        for face, local in zip(faces, ids, strict=True):
            track = self._shot.get(local)
            if track is None:
                track = self._shot[local] = FaceTrack(len(self.tracks))
                self.tracks.append(track)
            self._sight(track, index, time, image, face)
            if self.checker is not None:
                self.checker.see(track.id, index, image, face)

    def _sight(self, track: FaceTrack, index: int, time: float, image: Frame, face: FaceLandmarks) -> None:
        points = face.points68()
        if len(track.frames) % EMBED_EVERY == 0:
            track.embeddings.append(self.encoder.embed(image, face.box))
        if _wants_sample(track):
            matrix = alignment_matrix(points, self.resolution, self.face_type)
            track.samples.append(cv2.warpAffine(image, matrix, (self.resolution, self.resolution),
                                                flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
        track.frames.append(index)
        track.times.append(time)
        track.points.append(points)

    def footage(self) -> Footage:
        if self.checker is not None:
            for track_id, checks in self.checker.finish().items():
                self.tracks[track_id].checks = checks
        return Footage(self.tracks, self.cuts, self.frames)


def sighted(frames: Iterable[VideoFrame], landmarker: Landmarker | None,
            stored: Mapping[int, list[FaceLandmarks]] | None) -> Iterator[tuple[VideoFrame, list[FaceLandmarks]]]:
    """Each frame with its faces: the landmark model's, or the stored ones (an `extract --for-swap`) where
    `landmarker` is None."""
    try:
        for frame in frames:
            yield frame, (stored.get(frame.index, []) if landmarker is None
                          else landmarker.detect(frame.image, frame.time * 1000))
    finally:
        close_source(frames)  # a decoding stage before this one stops now, even after the model's error


def _wants_sample(track: FaceTrack) -> bool:
    """A crop every `sample_every` frames. When MAX_SAMPLES are held, every other one goes and the stride
    doubles, so the samples always span the whole track (a light change late in a shot counts too)."""
    if len(track.frames) % track.sample_every:
        return False
    if len(track.samples) < MAX_SAMPLES:
        return True
    del track.samples[1::2]
    track.sample_every *= 2
    return len(track.frames) % track.sample_every == 0


def select_tracks(footage: Footage, references: NDArray[np.float32] | None, threshold: float) -> list[FaceTrack]:
    """The tracks whose face is within `threshold` of a reference embedding (references None: every track)."""
    if references is None:
        return list(footage.tracks)
    return [t for t in footage.tracks if t.distance(references) <= threshold]


def faces_by_frame(tracks: list[FaceTrack], min_cutoff: float, beta: float,
                   untouched: Mapping[int, Collection[int]] | None = None) -> dict[int, list[tuple[int, Points]]]:
    """frame index -> [(track id, smoothed 68 points)] of the faces to swap in that frame, leaving out the
    frames of `untouched` (track id -> frame indices)."""
    by_frame: dict[int, list[tuple[int, Points]]] = {}
    for track in tracks:
        skip = (untouched or {}).get(track.id, ())
        for frame, points in zip(track.frames, track.smoothed(min_cutoff, beta), strict=True):
            if frame not in skip:
                by_frame.setdefault(frame, []).append((track.id, np.asarray(points, np.float32)))
    return by_frame
