"""Dense face landmarks with MediaPipe FaceLandmarker: 478 points, 52 blendshapes, head pose.

`Landmarker` runs on whole images (its own BlazeFace finds the faces) or inside a detector's box, which
catches small faces in group photos that the landmarker's built-in short-range detector misses.
In video mode it tracks faces between frames and skips detection, which is what makes it fast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.assets import asset_path
from facewright.faces.native import MediaPipeTask, QuietFirstCall, quiet_stderr
from facewright.faces.types import Points
from facewright.media.image import Frame

# Mesh vertex for each point of the classic 68-point (iBUG / dlib) layout. Derived from data, not copied:
# for 230 frames of the WolfgangLanger and single_face sample clips with one face found by both dlib's
# 68-point predictor and this landmarker, the vertex with the smallest median distance to each dlib point
# (in inter-ocular units). Median residual: 0.036 IOD on points 17-67, 0.045 IOD on all 68.
MESH_TO_68 = np.array([
    127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 367, 435, 376, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows 17-26
    168, 197, 195, 4, 240, 97, 2, 326, 305,  # nose 27-35
    33, 160, 158, 155, 153, 144, 382, 385, 387, 263, 373, 380,  # eyes 36-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
])

# A box is grown by this factor (around its center) before the landmarker sees the crop:
# the model expects the whole head with some context, as its own detector would give it.
BOX_CONTEXT = 1.8
CROP_SIDE = 384  # crops are resized to at most this: the landmark model's input is 256 px


@dataclass(frozen=True)
class FaceLandmarks:
    """One face. `points`: 478 x 3 float32 (x, y in image pixels; z in the same scale, smaller = nearer).
    `blendshapes`: 52 scores 0..1, names in `blendshape_names`. `pose`: 4 x 4 canonical-face-to-camera."""

    points: NDArray[np.float32] = field(repr=False)
    blendshapes: NDArray[np.float32] = field(repr=False)
    blendshape_names: tuple[str, ...] = field(repr=False)
    pose: NDArray[np.float32] = field(repr=False)

    @property
    def box(self) -> NDArray[np.float32]:
        """(x0, y0, x1, y1) bounding box of the 2D points."""
        xy = self.points[:, :2]
        return np.concatenate([xy.min(axis=0), xy.max(axis=0)]).astype(np.float32)

    def points68(self) -> Points:
        """The 68-point layout (68 x 2 pixels), for code that wants the classic points."""
        return np.ascontiguousarray(self.points[MESH_TO_68, :2])

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[self.blendshape_names.index(name)])

    @property
    def eyes_closed(self) -> float:
        """0 (open) .. 1 (closed), both eyes averaged."""
        return (self.blendshape("eyeBlinkLeft") + self.blendshape("eyeBlinkRight")) / 2

    @property
    def mouth_open(self) -> float:
        return self.blendshape("jawOpen")

    @property
    def yaw_pitch_roll(self) -> tuple[float, float, float]:
        return yaw_pitch_roll(self.pose)


def yaw_pitch_roll(pose: NDArray) -> tuple[float, float, float]:
    """Head rotation in degrees from a 4 x 4 pose, decomposed as R = Ry(yaw) @ Rx(pitch) @ Rz(roll).

    0, 0, 0 is a face looking straight into the camera. Mirroring the image negates yaw and roll.
    """
    rotation = np.asarray(pose, np.float64)[:3, :3]
    rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)  # drop any scale
    pitch = math.asin(float(np.clip(-rotation[1, 2], -1.0, 1.0)))
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


class Landmarker(MediaPipeTask):
    """MediaPipe FaceLandmarker. `video=True` tracks across calls (timestamps must increase)."""

    def __init__(self, model: Path | None = None, *, max_faces: int = 4, video: bool = False,
                 min_detection: float = 0.5, min_presence: float = 0.5, min_tracking: float = 0.5):
        self.model = model or asset_path("face_landmarker.task")
        self.video = video
        self._settings = dict(num_faces=max_faces, min_face_detection_confidence=min_detection,
                              min_face_presence_confidence=min_presence, min_tracking_confidence=min_tracking)
        self._task = self._create(video, max_faces)
        self._single = None  # an image-mode, one-face task for detect_in_box, made on first use
        self._quiet = QuietFirstCall()

    def _create(self, video: bool, max_faces: int):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True,
            **{**self._settings, "num_faces": max_faces})
        with quiet_stderr():
            return vision.FaceLandmarker.create_from_options(options)

    def tasks(self) -> tuple:
        return (self._task, self._single)

    def detect(self, image: Frame, time_ms: float | None = None) -> list[FaceLandmarks]:
        """All faces in an RGB uint8 image. In video mode pass the frame time in milliseconds."""
        import mediapipe as mp

        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.video:
            result = self._quiet(self._task.detect_for_video, frame, self.next_ms(time_ms))
        else:
            result = self._quiet(self._task.detect, frame)
        height, width = image.shape[:2]
        return [_to_face(result, i, width, height) for i in range(len(result.face_landmarks))]

    def detect_in_box(self, image: Frame, box: NDArray) -> FaceLandmarks | None:
        """Landmarks of the face inside `box` (x0, y0, x1, y1), found on a crop around it; None if none."""
        import mediapipe as mp

        if self._single is None:
            self._single, self._quiet_single = self._create(video=False, max_faces=1), QuietFirstCall()
        crop, matrix = _box_crop(image, box)
        result = self._quiet_single(self._single.detect, mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
        if not result.face_landmarks:
            return None
        face = _to_face(result, 0, crop.shape[1], crop.shape[0])
        return _uncrop(face, matrix)


def _to_face(result, i: int, width: int, height: int) -> FaceLandmarks:
    points = np.array([[p.x * width, p.y * height, p.z * width] for p in result.face_landmarks[i]], np.float32)
    shapes = sorted(result.face_blendshapes[i], key=lambda c: c.index)
    return FaceLandmarks(points, np.array([c.score for c in shapes], np.float32),
                         tuple(c.category_name for c in shapes),
                         np.asarray(result.facial_transformation_matrixes[i], np.float32))


def _box_crop(image: Frame, box: NDArray) -> tuple[Frame, NDArray[np.float64]]:
    """A square crop around the box with context, resized to <= CROP_SIDE; the 2x3 image->crop matrix."""
    center = (np.asarray(box[:2], np.float64) + np.asarray(box[2:4], np.float64)) / 2
    side = max(float(box[2] - box[0]), float(box[3] - box[1])) * BOX_CONTEXT
    scale = min(1.0, CROP_SIDE / side) if side > 0 else 1.0
    out = max(1, round(side * scale))
    matrix = np.array([[scale, 0, out / 2 - center[0] * scale], [0, scale, out / 2 - center[1] * scale]])
    crop = cv2.warpAffine(image, matrix, (out, out), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    return crop, matrix


def _uncrop(face: FaceLandmarks, matrix: NDArray[np.float64]) -> FaceLandmarks:
    scale = matrix[0, 0]
    points = face.points.copy()
    points[:, 0] = (points[:, 0] - matrix[0, 2]) / scale
    points[:, 1] = (points[:, 1] - matrix[1, 2]) / scale
    points[:, 2] /= scale
    return FaceLandmarks(points, face.blendshapes, face.blendshape_names, face.pose)
