"""Detail transfer: the rendered face's low frequencies with the target's own fine detail on top.

A model trained for minutes renders the right person with the right expression, but soft: its face has
almost nothing above a few cycles per face. The original face in the frame has that band (pores, film
grain, the fine light on the skin), and where the two faces line up it belongs to the frame, not to
either person. So the face put back is

    rendered + amount * weight * (highpass(original) - highpass(rendered))

with highpass(x) = x - gaussian(x, sigma = scale * face size in frame pixels), computed in the frame's
pixels over the face's box (the original's detail at full resolution, not at the model's). `weight` is 1
on the skin and `inside` (--detail-features) in the eyes, brows and lips (feathered), where the outlines
that make a face someone's own and its expression live: there the model's face keeps more of its own.

Below the split the model's face is its own but faint: a model trained for minutes draws the eyelids, the
lips' outline and the nostrils at a fraction of their contrast. `restore_contrast` raises the rendered
face's own band just coarser than the split (sigma to RESTORE_WIDTH x sigma) until its energy inside the
face matches the original face's in the same band, at most MAX_GAIN times, away from the face's border
with the frame. The shapes stay the model's (no pixel of the original moves into the face), and a model
that already draws that band at full contrast gets a gain of about 1: nothing changes.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from facewright.config import SwapOptions
from facewright.faces.mask import face_size, feature_mask, hull_mask
from facewright.faces.types import Mask, Points

INSIDE = SwapOptions.detail_features  # share of the detail carried over in the eyes, brows and lips
RESTORE_WIDTH = 4.0  # the band restore_contrast raises: from the split's sigma to this many times it
MAX_GAIN = 3.0  # the most it raises it by
RESTORE_EDGE = 0.06  # the raise ramps up over twice this share of the face size in from the hull's border:
# the border with the frame, where the mask blends, keeps the contrast it had (a raised band there is a seam)


def highpass(image: np.ndarray, sigma: float) -> np.ndarray:
    """`image` (h x w x C float32) minus its Gaussian blur of `sigma` pixels (edges repeated)."""
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def split_sigma(points: Points, scale: float) -> float:
    """The Gaussian sigma in pixels of the split between the model's band and the frame's (`scale` of the
    face size, --detail-scale)."""
    return max(0.5, scale * face_size(points))


def _band(image: np.ndarray, sigma: float) -> np.ndarray:
    """`image` blurred by `sigma` minus `image` blurred by RESTORE_WIDTH x `sigma` (the second blur applied to
    the first: Gaussian sigmas add in quadrature)."""
    fine = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return fine - _wide_blur(fine, sigma * math.sqrt(RESTORE_WIDTH**2 - 1))


def _wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` pixels computed on a copy shrunk so that sigma is 2.5-5 px, then enlarged back
    (bilinear): what a wide blur leaves has nothing fine enough for the shrinking to lose."""
    step = int(sigma // 2.5)
    if step < 2:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // step), max(1, height // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _strength(image: np.ndarray, inside: np.ndarray, sigma: float) -> float:
    """RMS of the luminance's band (sigma to RESTORE_WIDTH x sigma) over `inside`. Measured on a copy shrunk so
    that sigma is about 1.5 px: the band is coarser than that sampling, and a face in 4K costs what one in
    720p does."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    step = max(1, round(sigma / 1.5))
    if step > 1:
        size = (max(1, gray.shape[1] // step), max(1, gray.shape[0] // step))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        inside = cv2.resize(inside.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
    band = _band(gray, sigma / step)[inside]
    return float(np.sqrt(np.square(band).mean())) if band.size else 0.0


def contrast_gain(face: np.ndarray, original: np.ndarray, points: Points, scale: float) -> float:
    """How many times the original face's band (sigma to RESTORE_WIDTH x sigma of the split) is stronger than
    the rendered face's inside the face's hull, in luminance RMS, within 1..MAX_GAIN. Arrays as in
    `restore_contrast`, `original` in float 0..1."""
    return _gain(face, original, hull_mask(face.shape, points) > 0.5, split_sigma(points, scale))


def _gain(face: np.ndarray, original: np.ndarray, inside: np.ndarray, sigma: float) -> float:
    if not inside.any():
        return 1.0
    own, wanted = _strength(face, inside, sigma), _strength(original, inside, sigma)
    return float(np.clip(wanted / max(own, 1e-6), 1.0, MAX_GAIN))


def restore_contrast(face: np.ndarray, original: np.ndarray, points: Points, strength: float, scale: float
                     ) -> np.ndarray:
    """The rendered `face` (h x w x 3 RGB float32 0..1, warped into the frame) with its own band just coarser
    than the split raised toward the `original` region's (h x w x 3 uint8 or float 0..1) contrast in that band:
    gain 1 + `strength` x (contrast_gain - 1), ramping up from 0 at the hull's border to its full value
    2 x RESTORE_EDGE of the face size inside. `points`, `scale` as in `transfer_detail`. Returns a new
    float32 array in 0..1; `strength` 0 returns a copy."""
    face = np.asarray(face, np.float32)
    if strength <= 0 or face.size == 0:
        return face.copy()
    original = _unit(original, face.shape)
    hull = (hull_mask(face.shape, points) > 0.5).astype(np.uint8)
    sigma = split_sigma(points, scale)
    gain = 1.0 + strength * (_gain(face, original, hull > 0, sigma) - 1.0)
    if gain == 1.0:
        return face.copy()
    ramp = cv2.distanceTransform(hull, cv2.DIST_L2, 3) / (2 * RESTORE_EDGE * face_size(points))
    weight = (gain - 1.0) * np.minimum(ramp, 1.0)[..., None]
    return np.clip(face + weight * _band(face, sigma), 0.0, 1.0)


def _unit(original: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`original` as float32 0..1, checked to be the rendered face's size."""
    original = np.asarray(original)
    original = original.astype(np.float32) / (255.0 if original.dtype == np.uint8 else 1.0)
    if original.shape != shape:
        raise ValueError(f"face {shape} and original {original.shape} must be the same size")
    return original


def detail_weight(shape_hw: tuple[int, ...], points: Points, inside: float = INSIDE) -> Mask:
    """h x w weights: 1 on the face, `inside` in the eyes, brows and lips (their edges feathered)."""
    return 1.0 - (1.0 - inside) * feature_mask(shape_hw, points)


def transfer_detail(face: np.ndarray, original: np.ndarray, points: Points, amount: float, scale: float,
                    inside: float = INSIDE) -> np.ndarray:
    """The rendered `face` (h x w x 3 RGB float32 0..1, warped into the frame) with the `original` frame
    region's (h x w x 3 uint8 or float 0..1) high band carried over. `points`: the 68 landmarks in the
    region's pixels; `scale`: the split's sigma, a fraction of the face size (--detail-scale). Returns a new
    h x w x 3 float32 array in 0..1; `amount` 0 returns a copy."""
    face = np.asarray(face, np.float32)
    if amount <= 0 or face.size == 0:
        return face.copy()
    original = _unit(original, face.shape)
    sigma = split_sigma(points, scale)
    weight = amount * detail_weight(face.shape, points, inside)[..., None]
    moved = face + weight * highpass(original - face, sigma)  # = highpass(original) - highpass(face): one blur
    return np.clip(moved, 0.0, 1.0)
