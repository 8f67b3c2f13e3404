"""Face masks from 68 landmarks, and the morphology that turns a hard mask into a blend mask.

Pure functions on `Mask` arrays (H x W float32, 0..1). Landmarks are 68 x 2 (x, y) pixels of the iBUG
layout in whatever frame the mask is for: the original image or an aligned crop.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from facewright.errors import OptionError
from facewright.faces.align import as_points68
from facewright.faces.types import Mask, Points

# Face type: (forehead lift, width factor). The lift is in brow-to-chin heights: the face splits in thirds
# (hairline-brow, brow-nose, nose-chin), so the hairline is half that height above the brows. A head
# also spans the skull above the hairline and the ears beside the jaw. Same face types as align.py.
_HULLS = {"face": (0.0, 1.0), "whole_face": (0.5, 1.0), "head": (0.9, 1.25)}
JAW, BROWS, RIGHT_EYE, LEFT_EYE, OUTER_LIPS = (slice(0, 17), slice(17, 27), slice(36, 42), slice(42, 48),
                                               slice(48, 60))
# Eye regions take in the lids and lashes around the landmark contour: a margin of 4% of the face size.
EYE_MARGIN = 0.04
BROW_WIDTH = 0.05  # a brow's thickness, of the face size: its 5 landmarks run along its middle
FEATURE_MARGIN = 0.03
DISK_FILTER_MAX = 3  # radius in pixels up to which `erode` uses the disk filter even on a hard mask (it is faster)


def face_size(points68: Points) -> float:
    """Side in pixels of the square whose area equals the landmarks' convex hull: a yaw-robust face scale."""
    hull = cv2.convexHull(as_points68(points68).astype(np.float32))
    return math.sqrt(cv2.contourArea(hull))


def hull_mask(shape_hw: tuple[int, ...], points68: Points, face_type: str = "face") -> Mask:
    """The filled convex hull of jaw and brows, raised over the forehead for "whole_face" and "head".

    `shape_hw`: (height, width) of the mask; any further entries (an image's channels) are ignored.
    """
    if face_type not in _HULLS:
        raise OptionError(f"unknown face type {face_type!r}", fix=f"use one of {', '.join(_HULLS)}")
    points = as_points68(points68)
    lift, widen = _HULLS[face_type]
    chin, brows = points[8], points[BROWS]
    up = brows.mean(axis=0) - chin  # the face's vertical axis, chin -> brows, in pixels
    outline = np.concatenate([points[JAW], brows, brows + lift * up])
    return _fill_hull(shape_hw, _widen(outline, chin + up / 2, up, widen))


def _widen(points: np.ndarray, centre: np.ndarray, up: np.ndarray, factor: float) -> np.ndarray:
    """Scale the points' distance from the face's vertical axis (through `centre` along `up`)."""
    axis = up / np.linalg.norm(up)
    offset = points - centre
    along = np.outer(offset @ axis, axis)
    return centre + along + factor * (offset - along)


def component_masks(shape_hw: tuple[int, ...], points68: Points) -> dict[str, Mask]:
    """Masks of the parts that losses weigh up: "eyes" (both eyes with a margin for lids and lashes) and
    "mouth" (the outer lip contour). `shape_hw` as in `hull_mask`."""
    points = as_points68(points68)
    eyes = np.maximum(_fill_hull(shape_hw, points[RIGHT_EYE]), _fill_hull(shape_hw, points[LEFT_EYE]))
    return {"eyes": erode(eyes, -EYE_MARGIN * face_size(points)), "mouth": _fill_hull(shape_hw, points[OUTER_LIPS])}


def feature_mask(shape_hw: tuple[int, ...], points68: Points, margin: float = FEATURE_MARGIN,
                 brows: bool = True) -> Mask:
    """The eyes, brows (unless not `brows`) and lips (the outer lip contour) grown by `margin` and feathered by
    as much, both fractions of the face size: where a face's identity and expression are drawn. `shape_hw` as
    in `hull_mask`."""
    points = as_points68(points68)
    size = face_size(points)
    parts = component_masks(shape_hw, points)
    mask = np.maximum(parts["eyes"], parts["mouth"])
    width = max(1, round(BROW_WIDTH * size))
    for brow in (points[BROWS][:5], points[BROWS][5:]) if brows else ():
        cv2.polylines(mask, [np.rint(brow * 16).astype(np.int32)], False, 1.0, width, cv2.LINE_8, shift=4)
    return blend_mask(mask, -margin * size, margin * size)


def _fill_hull(shape_hw: tuple[int, ...], points: np.ndarray) -> Mask:
    height, width = shape_hw[:2]
    mask = np.zeros((height, width), np.float32)
    hull = cv2.convexHull(np.asarray(points, np.float32))
    # 4 fractional bits: sub-pixel landmarks keep their position instead of snapping to whole pixels.
    cv2.fillConvexPoly(mask, np.rint(hull * 16).astype(np.int32), 1.0, lineType=cv2.LINE_8, shift=4)
    return mask


def erode(mask: Mask, pixels: float) -> Mask:
    """Shrink the mask by a disk of radius `pixels` (fractional is fine); a negative radius grows it.

    Works on soft masks too (a minimum / maximum filter). The image border does not erode the mask.
    A hard mask (only 0 and 1) takes an exact Euclidean distance transform instead of the disk filter:
    the same pixels, in time that does not grow with the radius (the disk's grows with its area).
    """
    mask = _check_mask(mask)
    radius = abs(float(pixels))
    if radius < 1:
        return mask.copy()
    if radius > DISK_FILTER_MAX and _hard(mask):
        return _erode_hard(mask, radius, grow=pixels < 0)
    reach = math.floor(radius)
    y, x = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    disk = (x * x + y * y <= radius * radius).astype(np.uint8)
    return cv2.erode(mask, disk) if pixels > 0 else cv2.dilate(mask, disk)


def _hard(mask: Mask) -> bool:
    return not np.any((mask != 0) & (mask != 1))


def _erode_hard(mask: Mask, radius: float, grow: bool) -> Mask:
    """`erode` of a 0/1 mask: a pixel changes when the nearest pixel of the other value is within
    `radius` (squared distances are whole numbers: compared exactly, as the disk's x^2 + y^2 <= r^2)."""
    source = (mask < 0.5) if grow else (mask > 0.5)
    distance = cv2.distanceTransform(source.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # squared distance k beyond the disk: k > floor(r^2), i.e. distance > sqrt(floor(r^2) + 1/2), a margin
    # far above float32's rounding of sqrt(k) for any face a frame can hold
    beyond = distance > math.sqrt(math.floor(radius * radius) + 0.5)
    return (~beyond if grow else beyond).astype(np.float32)


def feather(mask: Mask, pixels: float) -> Mask:
    """Soften the edges with a Gaussian blur of sigma `pixels / 2`: a hard edge becomes a ramp about
    2 * `pixels` wide (+-2 sigma), centred on the old edge. Values stay in 0..1."""
    mask = _check_mask(mask)
    sigma = float(pixels) / 2
    if sigma <= 0:
        return mask.copy()
    size = 2 * math.ceil(3 * sigma) + 1
    return np.clip(cv2.GaussianBlur(mask, (size, size), sigma, borderType=cv2.BORDER_REPLICATE), 0.0, 1.0)


def blend_mask(mask: Mask, erode_px: float, blur_px: float) -> Mask:
    """`feather(erode(mask, erode_px), blur_px)`: erode by about `blur_px` to keep the soft edge inside."""
    return feather(erode(mask, erode_px), blur_px)


def _check_mask(mask: Mask) -> Mask:
    mask = np.asarray(mask, np.float32)
    if mask.ndim != 2:
        raise ValueError(f"expected an H x W mask, got {mask.shape}")
    return mask
