"""What stays in front of the swapped face: hands, everything a mask model learned is not face, the mouth.

Per frame, the hand model looks for hands around the faces being swapped (video mode: it tracks them);
per face, a mask model (train.mask_model) says which pixels of its own aligned crop are face. Both are
drawn in the frame's pixels, over the box the new face covers, and the warped blend mask is cut there:
every occluder pixel keeps the frame's own value, and the new face fades in over a couple of pixels
beside it. Working at the frame's resolution, not the swap model's crop (64 px for a small model, four
frame pixels a crop pixel), keeps that fade as thin as a hand's real edge. `--mouth keep` treats the
inside of the inner lips (teeth, tongue) the same way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facewright.faces.align import alignment_matrix, compose, invert
from facewright.faces.hands import Hand, HandTracker, around_faces, hand_mask
from facewright.faces.mask import erode, face_size, feather, hull_mask
from facewright.faces.types import Mask, Matrix, Points
from facewright.media.image import Frame
from facewright.timing import Timer
from facewright.train.mask_model import MaskModel

INNER_LIPS = slice(60, 68)  # the 68-point layout's inner-lip contour (mesh vertices of the lips' inner edge)
EDGE = 0.012  # of the face size: the width of the fade beside what is kept (~2 px on a 150 px face)
LEARNED_FACE = 0.5  # a mask model's probability under this is an occluder
LEARNED_MARGIN = 0.5  # mask-model pixels: its occluders grown by this (an edge is known to about one of them)
EXACT_MARGIN = 1.0  # frame pixels around what is kept that are kept exactly too (the warp's interpolation)
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 frame pixels, ends exclusive


@dataclass
class Occlusion:
    """The occluder sources of one swap: a hand tracker, a mask model, the mouth kept; any may be off.

    Per batch of frames: `prepare` runs the models on the faces to swap, then `keep` gives, per face, the
    part of its box the frame keeps."""

    hands: HandTracker | None = None
    model: MaskModel | None = None
    keep_mouth: bool = False
    timer: Timer = field(default_factory=Timer)
    _hands: dict[int, list[Hand]] = field(default_factory=dict, repr=False)
    _learned: list[tuple[np.ndarray, Matrix]] = field(default_factory=list, repr=False)

    @property
    def active(self) -> bool:
        return self.hands is not None or self.model is not None or self.keep_mouth

    def close(self) -> None:
        if self.hands is not None:
            self.hands.close()

    def prepare(self, images: Sequence[Frame], times: Sequence[float | None],
                jobs: Sequence[tuple[int, int, Points]]) -> None:
        """Find the hands near the faces of `jobs` (frame, track, 68 points) and run the mask model on them."""
        self._hands, self._learned = {}, []
        if self.hands is not None and jobs:
            with self.timer("hands"):
                self._hands = self._find_hands(images, times, jobs)
        if self.model is not None and jobs:
            with self.timer("mask model"):
                self._learned = self._predict(images, jobs)

    def keep(self, job: int, frame: int, box: Box, points: Points, face_type: str, blur: float) -> Mask | None:
        """h x w (the box's size): 1 where the frame keeps its own pixel in front of face `job`, fading to 0
        beside it; None when nothing is kept. `points`: the face's 68 points in frame pixels; `blur`: the
        swap's feather width, a fraction of the face size, which also says how near the face's outline an
        occluder may start and still count."""
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        if not self.active or shape[0] <= 0 or shape[1] <= 0:
            return None
        to_box = np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
        local = np.asarray(points, np.float64) - (x0, y0)
        occluders = np.zeros(shape, np.float32)
        if self._hands.get(frame):
            occluders = np.maximum(occluders, hand_mask(shape, self._hands[frame], to_box))
        if self._learned:
            face, crop_to_frame = self._learned[job]
            warped = cv2.warpAffine(face, compose(to_box, crop_to_frame), (shape[1], shape[0]),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
            learned = (warped < LEARNED_FACE).astype(np.float32)
            # a mask-model pixel is several frame pixels on a big face: its edge is only known to about one
            pixel = math.sqrt(abs(np.linalg.det(crop_to_frame[:, :2])))
            occluders = np.maximum(occluders, erode(learned, -LEARNED_MARGIN * pixel))
        if not self.keep_mouth and not occluders.any():
            return None  # most frames: no hand, nothing the mask model calls not face
        mouth = mouth_interior(shape, local) if self.keep_mouth else None
        return occluder_keep(hull_mask(shape, local, face_type), occluders, face_size(local), blur, mouth)

    def _find_hands(self, images: Sequence[Frame], times: Sequence[float | None],
                    jobs: Sequence[tuple[int, int, Points]]) -> dict[int, list[Hand]]:
        """frame -> hands near its faces (only frames with a face to swap are looked at)."""
        boxes: dict[int, list[np.ndarray]] = {}
        for i, _, points in jobs:
            boxes.setdefault(i, []).append(np.concatenate([points.min(axis=0), points.max(axis=0)]))
        found: dict[int, list[Hand]] = {}
        for i, frame_boxes in boxes.items():
            time_ms = None if times[i] is None else times[i] * 1000
            found[i] = self.hands.detect(images[i], time_ms, around_faces(frame_boxes, images[i].shape))
        return found

    def _predict(self, images: Sequence[Frame],
                 jobs: Sequence[tuple[int, int, Points]]) -> list[tuple[np.ndarray, Matrix]]:
        """Per job: the mask model's face probability in its own crop, and that crop's map to the frame."""
        model, side = self.model, self.model.resolution
        own = [alignment_matrix(points, side, model.face_type) for _, _, points in jobs]
        crops = np.stack([cv2.warpAffine(images[i], m, (side, side), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REFLECT)
                          for (i, _, _), m in zip(jobs, own, strict=True)])
        return [(face, invert(m)) for face, m in zip(model.predict(crops), own, strict=True)]


def occluder_keep(hull: Mask, occluders: Mask | None, face_px: float, blur: float,
                  mouth: Mask | None = None) -> Mask | None:
    """Where the frame keeps its own pixels: the occluders in front of the face, and `mouth`; None if none.

    An occluder counts where it reaches the face's core (the hull eroded by the feather width, `blur` *
    `face_px` pixels): outside it the hull's own soft edge decides, and a mask model's "not face" beyond the
    outline is no occluder. From the core, the occluder is followed out to the outline, so one that crosses
    it is kept whole. All arrays are the same H x W, in the frame's pixels.
    """
    region = np.zeros_like(hull)
    ramp = max(1.0, blur * face_px)
    if occluders is not None and occluders.any():
        core = occluders * erode(hull, ramp)
        if core.any():
            region = np.minimum(erode(core, -2 * ramp), occluders)
    if mouth is not None:
        region = np.maximum(region, mouth)
    if not region.any():
        return None
    return keep_out(region, max(1.0, EDGE * face_px))


def keep_out(region: Mask, edge: float) -> Mask:
    """1 over `region` and a pixel around it (exactly: the new face was warped into the frame with
    interpolation), then a fade to 0 over `edge` pixels: the part of the frame to keep."""
    return np.maximum(feather(erode(region, -(EXACT_MARGIN + edge)), edge), erode(region, -EXACT_MARGIN))


def mouth_interior(shape_hw: tuple[int, ...], points68: Points) -> Mask:
    """The inside of the inner-lip contour (teeth, tongue), a smooth closed curve through its 8 points."""
    lips = np.asarray(points68, np.float64)[INNER_LIPS]
    curve = _closed_spline(lips, 8)
    mask = np.zeros(shape_hw[:2], np.float32)
    cv2.fillPoly(mask, [np.rint(curve * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_8, shift=4)
    return mask


def crop_keep(keep: Mask, box: Box, matrix: Matrix, size: int) -> Mask:
    """The frame-pixel `keep` of a box, warped into the S x S crop (`matrix`: frame -> crop): for the patch."""
    x0, y0 = box[:2]
    from_box = compose(matrix, np.array([[1.0, 0, x0], [0, 1.0, y0]]))
    return cv2.warpAffine(keep, from_box, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _closed_spline(points: np.ndarray, steps: int) -> np.ndarray:
    """A closed Catmull-Rom curve through `points` (N x 2), `steps` samples per segment."""
    n = len(points)
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for k in range(n):
        p0, p1, p2, p3 = (points[(k + d) % n] for d in (-1, 0, 1, 2))
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    return np.concatenate(out)
