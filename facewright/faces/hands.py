"""Hands with MediaPipe HandLandmarker: 21 joints per hand, and the region of the image a hand covers.

The landmarks are joints, at the middle of the bones, so the hand's region is drawn around them: the palm
polygon, and a capsule a finger wide around every bone. In video mode the landmarker tracks hands between
calls and skips its palm detector, as the face landmarker does. A swap only needs the hands in front of a
face, so `detect` can look inside a box (a face's, grown): a smaller image, a faster frame.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.assets import asset_path
from facewright.faces.native import MediaPipeTask, QuietFirstCall, quiet_stderr
from facewright.faces.types import Mask
from facewright.media.image import Frame

# Joints: 0 wrist; thumb 1-4, index 5-8, middle 9-12, ring 13-16, little finger 17-20 (base to tip).
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (9, 10), (10, 11), (11, 12),
         (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20), (5, 9), (9, 13), (13, 17))
PALM = (0, 1, 2, 5, 9, 13, 17)
# A finger is about a fifth of the palm's length wide (wrist to the middle finger's base); the region is
# drawn a little wider, so the edge of a finger is inside it, not on it.
FINGER_WIDTH = 0.28
CUTOUT_WIDTH = 0.2  # nearer a real finger: a hand cut out to be pasted elsewhere carries little of its background
HAND_CONTEXT = 2.6  # a face box grown by this around its centre: where a hand in front of the face can be
CROP_SIDE = 384  # the region is resized to at most this; the landmark model's input is 224 px


@dataclass(frozen=True)
class Hand:
    """One hand: `points` 21 x 2 float32 image pixels (joints as in BONES); `side` "Left" or "Right" as
    MediaPipe says it (for a mirrored image); `score` its confidence in that."""

    points: NDArray[np.float32] = field(repr=False)
    side: str = ""
    score: float = 0.0

    @property
    def size(self) -> float:
        """The palm's length in pixels, robust to a hand seen edge-on: the longest of wrist to each finger's
        base and (scaled) across the knuckles."""
        p = self.points
        spans = [np.linalg.norm(p[0] - p[i]) for i in (5, 9, 17)] + [1.25 * np.linalg.norm(p[5] - p[17])]
        return float(max(spans))

    @property
    def box(self) -> NDArray[np.float32]:
        """(x0, y0, x1, y1) around the region (`hand_mask`), not only the joints."""
        pad = self.size * FINGER_WIDTH
        return np.concatenate([self.points.min(axis=0) - pad, self.points.max(axis=0) + pad]).astype(np.float32)


def hand_mask(shape_hw: tuple[int, ...], hands: Sequence[Hand], matrix: NDArray | None = None,
              finger: float = FINGER_WIDTH) -> Mask:
    """H x W float32 mask, 1 where a hand is: its palm polygon and a finger-wide capsule around each bone.

    `matrix`: a 2 x 3 map from the hands' image to this mask's pixels (an aligned face crop), or None.
    `finger`: the capsules' width in palm lengths (CUTOUT_WIDTH: the hand only, for cutting it out).
    """
    height, width = shape_hw[:2]
    mask = np.zeros((height, width), np.float32)
    for hand in hands:
        points = np.asarray(hand.points, np.float64)
        scale = 1.0
        if matrix is not None:
            matrix = np.asarray(matrix, np.float64)
            points = points @ matrix[:, :2].T + matrix[:, 2]
            scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
        radius = max(1, round(hand.size * scale * finger / 2 * 16))  # 4 fractional bits, as below
        fixed = np.rint(points * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, cv2.convexHull(fixed[list(PALM)]), 1.0, lineType=cv2.LINE_8, shift=4)
        for a, b in BONES:
            cv2.line(mask, tuple(fixed[a]), tuple(fixed[b]), 1.0, thickness=max(1, 2 * radius // 16),
                     lineType=cv2.LINE_8, shift=4)
        for point in fixed:
            cv2.circle(mask, tuple(point), radius, 1.0, thickness=-1, lineType=cv2.LINE_8, shift=4)
    return mask


class HandTracker(MediaPipeTask):
    """MediaPipe HandLandmarker. `video=True` tracks across calls (timestamps must increase)."""

    def __init__(self, model: Path | None = None, *, max_hands: int = 2, video: bool = True,
                 min_detection: float = 0.5, min_presence: float = 0.5, min_tracking: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        self.model = model or asset_path("hand_landmarker.task")
        self.video = video
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE, num_hands=max_hands,
            min_hand_detection_confidence=min_detection, min_hand_presence_confidence=min_presence,
            min_tracking_confidence=min_tracking)
        with quiet_stderr():
            self._task = vision.HandLandmarker.create_from_options(options)
        self._quiet: dict[tuple[int, ...], QuietFirstCall] = {}  # LiteRT notes a new input size on stderr

    def detect(self, image: Frame, time_ms: float | None = None, box: NDArray | None = None) -> list[Hand]:
        """The hands in an RGB uint8 image, or only inside `box` (x0, y0, x1, y1) when given, in image
        pixels either way. In video mode pass the frame time in milliseconds."""
        import mediapipe as mp

        crop, offset, scale = _region(image, box)
        if crop.size == 0:
            return []
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=crop)
        if self.video:
            result = self._quiet.setdefault(crop.shape, QuietFirstCall())(self._task.detect_for_video, frame,
                                                                           self.next_ms(time_ms))
        else:
            result = self._quiet.setdefault(crop.shape, QuietFirstCall())(self._task.detect, frame)
        height, width = crop.shape[:2]
        hands = []
        for i, joints in enumerate(result.hand_landmarks):
            points = np.array([[p.x * width, p.y * height] for p in joints], np.float32) / scale + offset
            side = result.handedness[i][0] if i < len(result.handedness) and result.handedness[i] else None
            hands.append(Hand(points.astype(np.float32), side.category_name if side else "",
                              float(side.score) if side else 0.0))
        return hands


def around_faces(boxes: Sequence[NDArray], shape_hw: tuple[int, ...], context: float = HAND_CONTEXT) -> NDArray | None:
    """One box (x0, y0, x1, y1) holding every face box grown by `context` about its centre, inside the
    image; None when there are no faces."""
    if not len(boxes):
        return None
    grown = []
    for box in boxes:
        box = np.asarray(box, np.float64)
        centre, half = (box[:2] + box[2:4]) / 2, (box[2:4] - box[:2]) * context / 2
        grown.append(np.concatenate([centre - half, centre + half]))
    grown = np.stack(grown)
    height, width = shape_hw[:2]
    return np.array([max(0.0, grown[:, 0].min()), max(0.0, grown[:, 1].min()),
                     min(float(width), grown[:, 2].max()), min(float(height), grown[:, 3].max())], np.float32)


def _region(image: Frame, box: NDArray | None) -> tuple[Frame, NDArray[np.float32], float]:
    """The part of `image` inside `box`, resized to at most CROP_SIDE; its top-left corner and scale."""
    if box is None:
        x0 = y0 = 0
        crop = image
    else:
        height, width = image.shape[:2]
        x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
        x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
        crop = image[y0:max(y0, y1), x0:max(x0, x1)]
    scale = min(1.0, CROP_SIDE / max(crop.shape[:2])) if crop.size else 1.0
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop), np.array([x0, y0], np.float32), scale
