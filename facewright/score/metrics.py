"""Quality metrics of a face swap: pure functions of pixels, masks, embeddings, blendshapes and head poses.

Conventions: images are H x W x 3 uint8 RGB; masks H x W float32 0..1 (or bool); embeddings are dlib's
128-d vectors (faces.identity), features SFace's unit 128-d vectors (faces.sface); blendshapes are
MediaPipe's 52 scores 0..1; angles are degrees; pixel differences are in 8-bit levels (0..255), averaged
over the three channels (the largest channel difference where said).

Each measure compares the output frame with the input frame it was made from, so that what the footage does
by itself (a head turn, a cut, natural contrast at the jaw line) is not blamed on the swap.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from facewright.faces.identity import THRESHOLD, distance
from facewright.faces.sface import SAME_PERSON, Feature
from facewright.faces.types import Mask
from facewright.media.image import Frame

# A face counts as mouth-open / eyes-closed from these blendshape scores (jawOpen; mean of the two blinks).
MOUTH_OPEN = 0.3
EYES_CLOSED = 0.5
# A pixel counts as changed beyond this difference: the watermark moves pixels by a few levels at most.
CHANGED_LEVEL = 24
# A hand pixel counts as repainted beyond this (largest channel) difference. Watermark + H.264 at the default
# crf move 0.3% of the hand pixels over the sample clip's face beyond it (99.9th percentile 15 levels); a
# hand pasted over or blurred away moves most of them by tens of levels.
REPAINTED_LEVEL = 12


@dataclass(frozen=True)
class IdentityScore:
    """Distances of one output face: to the source person A and to the original face it replaced."""

    to_source: float  # L2 to A's mean embedding
    to_target: float  # L2 to the input frame's face at the same place
    threshold: float = THRESHOLD

    @property
    def as_source(self) -> bool:
        """A recognizer would say "this is A" and not "this is the person who was there"."""
        return self.to_source < self.threshold <= self.to_target

    @property
    def closer_to_source(self) -> bool:
        """Retrieval between the two candidates: the face is nearer A than the person it replaced."""
        return self.to_source < self.to_target


def identity_score(output: ArrayLike, source: ArrayLike, target: ArrayLike,
                   threshold: float = THRESHOLD) -> IdentityScore:
    """`output`, `target`: (128,) embeddings of the face in the output frame and the input frame; `source`:
    A's (128,) centroid."""
    return IdentityScore(float(distance(output, source)), float(distance(output, target)), threshold)


@dataclass(frozen=True)
class SimilarityScore:
    """SFace cosine similarities of one output face: to the source person A and to the original face."""

    to_source: float  # to A's mean feature
    to_target: float  # to the input frame's face at the same place
    threshold: float = SAME_PERSON

    @property
    def as_source(self) -> bool:
        """SFace would say "this is A" and not "this is the person who was there"."""
        return self.to_source >= self.threshold > self.to_target

    @property
    def closer_to_source(self) -> bool:
        """Retrieval between the two candidates: the face is more like A than the person it replaced."""
        return self.to_source > self.to_target


def similarity_score(output: Feature, source: Feature, target: Feature,
                     threshold: float = SAME_PERSON) -> SimilarityScore:
    """`output`, `target`: unit SFace features of the face in the output frame and the input frame; `source`:
    A's unit mean feature."""
    return SimilarityScore(float(np.dot(output, source)), float(np.dot(output, target)), threshold)


def expression_correlation(output: ArrayLike, reference: ArrayLike) -> float:
    """Pearson correlation of two blendshape vectors: 1.0 = the same expression pattern.

    Two constant vectors correlate 1.0 if equal and 0.0 if not; one constant vector 0.0 (no pattern shared).
    """
    a, b = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two equal-length score vectors, got {a.shape} and {b.shape}")
    da, db = a - a.mean(), b - b.mean()
    var_a, var_b = float(da @ da), float(db @ db)
    if var_a < 1e-12 or var_b < 1e-12:
        return 1.0 if var_a < 1e-12 and var_b < 1e-12 and np.allclose(a, b) else 0.0
    return float(np.clip(da @ db / math.sqrt(var_a * var_b), -1.0, 1.0))


def agrees(output: float, reference: float, threshold: float) -> bool:
    """Both scores on the same side of `threshold` (mouth open in both, or closed in both)."""
    return (output >= threshold) == (reference >= threshold)


def pose_offset(output: ArrayLike, reference: ArrayLike) -> NDArray[np.float64]:
    """Signed yaw, pitch, roll of `output` minus `reference` in degrees, wrapped into [-180, 180): averaged
    over a clip it tells a steady tilt of the swapped face (a model pulled toward its person's usual pose)
    from jitter, which averages out."""
    delta = np.asarray(output, np.float64) - np.asarray(reference, np.float64)
    return (delta + 180.0) % 360.0 - 180.0


def pose_difference(output: ArrayLike, reference: ArrayLike) -> NDArray[np.float64]:
    """|yaw, pitch, roll| differences in degrees, wrapped so that 179 and -179 are 2 apart."""
    return np.abs(pose_offset(output, reference))


def pose_error(output: ArrayLike, reference: ArrayLike) -> float:
    """L2 norm of the yaw/pitch/roll differences, degrees (the pose error of face-swap papers)."""
    return float(np.linalg.norm(pose_difference(output, reference)))


def sharpness(image: Frame, mask: Mask) -> float:
    """Variance of the Laplacian of the gray image inside `mask` (> 0.5): fine detail; blur lowers it."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inside = np.asarray(mask, np.float32) > 0.5
    if not inside.any():
        return 0.0
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=3)[inside].var())


def sharpness_ratio(output: Frame, reference: Frame, mask: Mask) -> float:
    """Detail of the output's face over the input's: 1.0 = as sharp, 0.2 = much blurrier (a weak model)."""
    return (sharpness(output, mask) + 1e-3) / (sharpness(reference, mask) + 1e-3)


def region_change(previous: Frame, current: Frame, mask: Mask) -> float:
    """Mean absolute difference between two frames inside `mask` (weights 0..1), levels; 0 for an empty mask."""
    weights = np.asarray(mask, np.float32)
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    change = np.abs(current.astype(np.int16) - previous.astype(np.int16)).mean(axis=2)
    return float((change * weights).sum() / total)


def flicker_ratio(output_changes: Sequence[float], input_changes: Sequence[float]) -> float:
    """Frame-to-frame change of the output's face region over that of the input: 1.0 = as steady as the source.

    Sums over the clip, not a mean of per-frame ratios: a still moment (change ~0 in the input) would make a
    per-frame ratio explode. Both all-still gives 1.0.
    """
    out, ref = float(np.sum(output_changes)), float(np.sum(input_changes))
    floor = 1e-3 * max(1, len(input_changes))  # a thousandth of a level per frame: "no change"
    return (out + floor) / (ref + floor)


def seam(image: Frame, mask: Mask, width: float) -> float:
    """Mean color difference (CIE76 delta E in Lab) across the border of `mask`, over the whole border.

    At each border pixel the mean color of the mask's inside within `width` pixels is compared with the mean
    color of its outside within `width` pixels (normalized convolution), so a seam that is dark on one side
    of the face and bright on the other does not average away. 0.0 for a mask without a border.
    """
    inside = np.asarray(mask, np.float32) > 0.5
    if inside.all() or not inside.any():
        return 0.0
    radius = max(1, round(width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    as_u8 = inside.astype(np.uint8)
    inner = (as_u8 - cv2.erode(as_u8, kernel)).astype(np.float32)  # ring just inside the border
    outer = (cv2.dilate(as_u8, kernel) - as_u8).astype(np.float32)  # ring just outside
    border = (as_u8 - cv2.erode(as_u8, np.ones((3, 3), np.uint8))).astype(bool)
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    side = float(2 * radius + 1)
    inner_mean, inner_weight = _local_mean(lab, inner, side)
    outer_mean, outer_weight = _local_mean(lab, outer, side)
    usable = border & (inner_weight > 0) & (outer_weight > 0)
    if not usable.any():
        return 0.0
    return float(np.linalg.norm(inner_mean[usable] - outer_mean[usable], axis=1).mean())


def _local_mean(lab: NDArray[np.float32], weights: NDArray[np.float32], side: float):
    """Weighted box mean of `lab` over `weights` at every pixel, and the weight it had (normalized convolution)."""
    size = (int(side), int(side))
    weight = cv2.blur(weights, size)
    total = cv2.blur(lab * weights[..., None], size)
    return total / np.maximum(weight, 1e-6)[..., None], weight


def outside_change(output: Frame, reference: Frame, outside: Mask) -> tuple[float, float]:
    """Over the pixels of `outside` (where the swap must not touch): mean absolute difference in levels, and the
    share of those pixels changed by more than CHANGED_LEVEL. (0.0, 0.0) for an empty region."""
    region = np.asarray(outside, np.float32) > 0.5
    if not region.any():
        return 0.0, 0.0
    difference = np.abs(output.astype(np.int16) - reference.astype(np.int16))[region]  # N x 3
    return float(difference.mean()), float((difference.max(axis=1) > CHANGED_LEVEL).mean())


def repainted(output: Frame, reference: Frame, region: Mask) -> tuple[int, float | None]:
    """Pixels of `region` (> 0.5), and the share of them whose largest channel difference, output against
    input, is beyond REPAINTED_LEVEL (None for an empty region)."""
    inside = np.asarray(region, np.float32) > 0.5
    count = int(inside.sum())
    if count == 0:
        return 0, None
    difference = np.abs(output.astype(np.int16) - reference.astype(np.int16))[inside].max(axis=1)
    return count, float((difference > REPAINTED_LEVEL).mean())


def summarize(values: Sequence[float], higher_is_better: bool) -> dict[str, float | int | None]:
    """mean, 5th and 95th percentile, worst and count of the finite values (None when there are none)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if len(finite) == 0:
        return {"mean": None, "p5": None, "p95": None, "worst": None, "count": 0}
    return {"mean": float(finite.mean()), "p5": float(np.percentile(finite, 5)),
            "p95": float(np.percentile(finite, 95)),
            "worst": float(finite.min() if higher_is_better else finite.max()), "count": int(len(finite))}
