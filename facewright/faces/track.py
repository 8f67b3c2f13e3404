"""Tracking: link the faces of successive video frames into tracks, one per appearance of one person.

With embeddings, a face continues the live track of the same identity (distance <= max_distance), the nearest
box first; a face of another identity starts a new track even at the old place, because a cut between two
people framed alike (shot / reverse shot) must not mix them in one track. Without embeddings, box overlap links.
A face absent for more than `max_gap` frames starts a new track. Assignment is greedy, best pair first: a frame
holds a few faces, where greedy equals the optimal (Hungarian) assignment in practice.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from facewright.errors import OptionError
from facewright.faces.boxes import box_iou
from facewright.faces.identity import THRESHOLD, Embedding, centroid, pairwise_distance
from facewright.faces.types import Detection

# Half a second at 30 fps: a hand passing over the face. A longer absence is a new appearance.
MAX_GAP = 15
# Consecutive boxes of one moving face overlap far more (>= 0.6 at 7.5 fps samples of a talking head);
# 0.3 still tolerates fast motion and sparse sampling.
MIN_IOU = 0.3
# A track's identity is the mean of its latest embeddings: robust to one blurred frame, yet follows slow change.
IDENTITY_MEMORY = 8


@dataclass
class Track:
    """One person's face through consecutive frames. Lists are parallel, in frame order.

    `frames` are frame indices of the video; `embeddings` is empty when tracking ran without embeddings.
    """

    id: int
    frames: list[int] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list, repr=False)
    embeddings: list[Embedding] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def boxes(self) -> NDArray[np.float32]:
        """T x 4 boxes (x0, y0, x1, y1) in pixels, one per frame of the track."""
        return np.array([d.box for d in self.detections], np.float32).reshape(-1, 4)

    @property
    def identity(self) -> Embedding | None:
        """The mean of the latest IDENTITY_MEMORY embeddings, (128,); None without embeddings."""
        return centroid(self.embeddings[-IDENTITY_MEMORY:]) if self.embeddings else None

    def add(self, frame: int, detection: Detection, embedding: Embedding | None) -> None:
        """Append one frame's face; `embedding` (128,) or None when tracking without embeddings."""
        self.frames.append(frame)
        self.detections.append(detection)
        if embedding is not None:
            self.embeddings.append(np.asarray(embedding, np.float32))


def greedy_assign(cost: NDArray, allowed: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(row, column) pairs of an R x C cost matrix, cheapest allowed pair first, each row and column used once."""
    rows, cols = np.nonzero(allowed)
    order = np.argsort(cost[rows, cols], kind="stable")
    used_rows, used_cols, pairs = set(), set(), []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return pairs


def match_cost(track_boxes: NDArray, boxes: NDArray, track_ids: NDArray | None, embeddings: NDArray | None, *,
               min_iou: float, max_distance: float) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """T x D costs (lower is better) and the allowed links between T tracks and D detections.

    With identities on both sides a link needs the same identity (distance <= max_distance), wherever the box
    is; the cost adds the missing overlap to the distance in threshold units, so among faces of one identity
    the one at the old place wins. Without them a link needs overlap (IoU >= min_iou).
    """
    overlap = box_iou(track_boxes, boxes)
    if track_ids is None or embeddings is None:
        return 1 - overlap, overlap >= min_iou
    dist = pairwise_distance(track_ids, embeddings)
    return (1 - overlap) + dist / max_distance, dist <= max_distance


class Tracker:
    """Streams frames into tracks: call `update` once per (sampled) frame in increasing frame order.

    `max_gap`: frames a face may be missing and still continue its track (frame indices, not samples).
    `min_iou`: box overlap that links a face to a track when there are no embeddings.
    `max_distance`: embedding distance within which a face may continue a track, wherever its box is.
    Pass embeddings for every frame or for none: a track without them is linked by overlap alone.
    """

    def __init__(self, *, max_gap: int = MAX_GAP, min_iou: float = MIN_IOU, max_distance: float = THRESHOLD):
        _check_options(max_gap, min_iou, max_distance)
        self.max_gap, self.min_iou, self.max_distance = max_gap, min_iou, max_distance
        self.tracks: list[Track] = []
        self._last_frame = -1

    def update(self, frame: int, detections: Sequence[Detection],
               embeddings: NDArray[np.float32] | None = None) -> list[int]:
        """Add one frame's detections (and their N x 128 embeddings, if any); returns each detection's track id."""
        embeddings = self._check_frame(frame, detections, embeddings)
        live = [t for t in self.tracks if frame - t.frames[-1] - 1 <= self.max_gap]
        per_face = [None] * len(detections) if embeddings is None else list(embeddings)
        ids = [-1] * len(detections)
        for t, d in self._match(live, detections, embeddings):
            live[t].add(frame, detections[d], per_face[d])
            ids[d] = live[t].id
        for d in (d for d, track_id in enumerate(ids) if track_id < 0):
            self.tracks.append(Track(len(self.tracks)))
            self.tracks[-1].add(frame, detections[d], per_face[d])
            ids[d] = self.tracks[-1].id
        return ids

    def _match(self, live: list[Track], detections: Sequence[Detection],
               embeddings: NDArray | None) -> list[tuple[int, int]]:
        if not live or not detections:
            return []
        identities = [t.identity for t in live]
        track_ids = None if any(i is None for i in identities) else np.stack(identities)
        cost, allowed = match_cost(np.stack([t.detections[-1].box for t in live]),
                                   np.stack([d.box for d in detections]), track_ids, embeddings,
                                   min_iou=self.min_iou, max_distance=self.max_distance)
        return greedy_assign(cost, allowed)

    def _check_frame(self, frame: int, detections: Sequence[Detection], embeddings: NDArray | None) -> NDArray | None:
        """Frames must increase (a tracker only looks back); embeddings must match the detections one to one."""
        if frame <= self._last_frame:
            raise ValueError(f"frame {frame} after frame {self._last_frame}: frames must increase")
        self._last_frame = frame
        if embeddings is None:
            return None
        embeddings = np.asarray(embeddings, np.float32)
        if len(embeddings) != len(detections):
            raise ValueError(f"frame {frame}: {len(embeddings)} embeddings for {len(detections)} detections")
        if len(detections) and embeddings.ndim != 2:
            raise ValueError(f"frame {frame}: embeddings must be N x 128, got {embeddings.shape}")
        return embeddings


def link_tracks(per_frame: Sequence[Sequence[Detection]],
                embeddings: Sequence[NDArray[np.float32] | None] | None = None, *,
                frames: Sequence[int] | None = None, max_gap: int = MAX_GAP, min_iou: float = MIN_IOU,
                max_distance: float = THRESHOLD) -> list[Track]:
    """Tracks of a whole video: `per_frame[i]` are the detections of frame `frames[i]` (default: i).

    `embeddings[i]` are their N x 128 embeddings (None to track by overlap alone). Tracks come in order of
    their first frame. See Tracker for the options.
    """
    frames = range(len(per_frame)) if frames is None else frames
    embeddings = [None] * len(per_frame) if embeddings is None else embeddings
    if not len(frames) == len(embeddings) == len(per_frame):
        raise ValueError(f"{len(per_frame)} frames of detections, {len(embeddings)} of embeddings, "
                         f"{len(frames)} frame indices: they must be equal")
    tracker = Tracker(max_gap=max_gap, min_iou=min_iou, max_distance=max_distance)
    for frame, detections, frame_embeddings in zip(frames, per_frame, embeddings, strict=True):
        tracker.update(frame, detections, frame_embeddings)
    return tracker.tracks


def _check_options(max_gap: int, min_iou: float, max_distance: float) -> None:
    if max_gap < 0:
        raise OptionError(f"max_gap must be >= 0 frames, got {max_gap}", fix=f"the default is {MAX_GAP}")
    if not 0 < min_iou <= 1:
        raise OptionError(f"min_iou must be in (0, 1], got {min_iou}", fix=f"the default is {MIN_IOU}")
    if not max_distance > 0:
        raise OptionError(f"max_distance must be > 0, got {max_distance}", fix=f"the default is {THRESHOLD}")
