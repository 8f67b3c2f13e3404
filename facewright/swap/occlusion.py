"""What stays in front of the swapped face: hands, everything a mask model learned is not face, the mouth.

Per frame, the hand model looks for hands around the faces being swapped (video mode: it tracks them);
per face, a mask model (train.mask_model) says which pixels of the face crop are face. Both become an
occluder mask in the swap's crop. The blend mask is then cut where an occluder is, with its soft edge put
outside the occluder: every occluder pixel keeps the frame's own pixel, and the new face fades in
beside it. `--mouth keep` treats the inside of the inner lips (teeth, tongue) the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facewright.faces.align import alignment_matrix, compose, invert
from facewright.faces.hands import Hand, HandTracker, around_faces, hand_mask
from facewright.faces.mask import erode, feather
from facewright.faces.types import Mask, Matrix, Points
from facewright.media.image import Frame
from facewright.timing import Timer
from facewright.train.mask_model import MaskModel

INNER_LIPS = slice(60, 68)  # the 68-point layout's inner-lip contour (mesh vertices of the lips' inner edge)
MOUTH_FEATHER = 0.02  # of the face size: the kept mouth's edge is this soft
LEARNED_FACE = 0.5  # a mask model's probability under this is an occluder
EXACT_MARGIN = 1.5  # crop pixels around what is kept that are kept exactly too


@dataclass
class Occlusion:
    """The occluder sources of one swap: a hand tracker, a mask model, the mouth kept; any may be off."""

    hands: HandTracker | None = None
    model: MaskModel | None = None
    keep_mouth: bool = False
    timer: Timer = field(default_factory=Timer)

    @property
    def active(self) -> bool:
        return self.hands is not None or self.model is not None or self.keep_mouth

    def close(self) -> None:
        if self.hands is not None:
            self.hands.close()

    def occluders(self, images: Sequence[Frame], times: Sequence[float | None],
                  jobs: Sequence[tuple[int, int, Points]], matrices: Sequence[Matrix], size: int) -> list[Mask | None]:
        """For each (frame, track, 68 points) job: its occluders as an S x S mask in the swap's crop
        (`matrices`: frame -> crop), or None where nothing occludes."""
        out: list[Mask | None] = [None] * len(jobs)
        if self.hands is not None:
            with self.timer("hands"):
                found = self._hands(images, times, jobs)
                for j, ((i, _, _), matrix) in enumerate(zip(jobs, matrices, strict=True)):
                    if found[i]:
                        out[j] = hand_mask((size, size), found[i], matrix)
        if self.model is not None:
            with self.timer("mask model"):
                for j, learned in enumerate(self._learned(images, jobs, matrices, size)):
                    out[j] = learned if out[j] is None else np.maximum(out[j], learned)
        return out

    def _hands(self, images: Sequence[Frame], times: Sequence[float | None],
               jobs: Sequence[tuple[int, int, Points]]) -> dict[int, list[Hand]]:
        """frame -> hands near its faces (only frames with a face to swap are looked at)."""
        boxes: dict[int, list[np.ndarray]] = {}
        for i, _, points in jobs:
            boxes.setdefault(i, []).append(np.concatenate([points.min(axis=0), points.max(axis=0)]))
        found: dict[int, list[Hand]] = {}
        for i, frame_boxes in boxes.items():
            box = around_faces(frame_boxes, images[i].shape)
            time_ms = None if times[i] is None else times[i] * 1000
            found[i] = self.hands.detect(images[i], time_ms, box)
        return found

    def _learned(self, images: Sequence[Frame], jobs: Sequence[tuple[int, int, Points]], matrices: Sequence[Matrix],
                 size: int) -> list[Mask]:
        """The mask model's "not face" inside the face, warped into the swap's crop."""
        model = self.model
        side = model.resolution
        own = [alignment_matrix(points, side, model.face_type) for _, _, points in jobs]
        crops = np.stack([cv2.warpAffine(images[i], m, (side, side), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REFLECT)
                          for (i, _, _), m in zip(jobs, own, strict=True)])
        predicted = model.predict(crops)
        out = []
        for face, mine, theirs in zip(predicted, own, matrices, strict=True):
            to_swap = compose(theirs, invert(mine))  # mask-model crop -> swap crop
            warped = cv2.warpAffine(face, to_swap, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
            out.append((warped < LEARNED_FACE).astype(np.float32))
        return out


def cut_occluders(mask: Mask, hull: Mask, occluders: Mask | None, face_px: float, blur: float) -> Mask:
    """`mask` (the refined blend mask) with the occluders in front of the face cut out, their soft edge outside.

    An occluder counts where it reaches the face's core (the hull eroded by the feather width): outside it the
    hull's own soft edge decides, and a mask model's "not face" beyond the outline is no occluder. From the
    core, the occluder is followed out to the outline, so one that crosses it is kept whole. The cut's own
    edge is half the feather width: a hand keeps its shape.
    """
    if occluders is None or not occluders.any():
        return mask
    ramp = max(1.0, blur * face_px)
    core = occluders * erode(hull, ramp)
    if not core.any():
        return mask
    region = np.minimum(erode(core, -2 * ramp), occluders)
    return mask * (1 - keep_out(region, ramp / 2))


def keep_out(region: Mask, ramp: float) -> Mask:
    """1 over `region` and a pixel around it (exactly: warped back into the frame, the crop's pixels are
    interpolated), then a soft fall to 0 over `ramp` pixels: the part of a frame to keep."""
    return np.maximum(feather(erode(region, -(ramp + 2)), ramp), erode(region, -EXACT_MARGIN))


def mouth_interior(shape_hw: tuple[int, ...], points68: Points) -> Mask:
    """The inside of the inner-lip contour (teeth, tongue), a smooth closed curve through its 8 points."""
    lips = np.asarray(points68, np.float64)[INNER_LIPS]
    curve = _closed_spline(lips, 8)
    mask = np.zeros(shape_hw[:2], np.float32)
    cv2.fillPoly(mask, [np.rint(curve * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_8, shift=4)
    return mask


def keep_mouth(mask: Mask, points68: Points, face_px: float) -> Mask:
    """`mask` with the inner mouth (and a soft edge outside it) cut out: the frame's own teeth and tongue."""
    mouth = mouth_interior(mask.shape, points68)
    if not mouth.any():
        return mask
    return mask * (1 - keep_out(mouth, max(1.0, MOUTH_FEATHER * face_px)))


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

