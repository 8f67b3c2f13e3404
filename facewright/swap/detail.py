"""Detail transfer: the rendered face's low frequencies with the target's own fine detail on top.

A model trained for minutes renders the right person with the right expression, but soft: its face has
almost nothing above a few cycles per face. The original face in the frame has that band (pores, film
grain, the fine light on the skin), and where the two faces line up it belongs to the frame, not to
either person. So the face put back is

    rendered + amount * weight * (highpass(original) - highpass(rendered))

with highpass(x) = x - gaussian(x, sigma = scale * face size in frame pixels), computed in the frame's
pixels over the face's box (the original's detail at full resolution, not at the model's). `weight` is 1
on the skin and `inside` in the eyes, brows and lips (feathered), where the outlines that make a face
someone's own and its expression live: there the model's face keeps more of its own.
"""
from __future__ import annotations

import cv2
import numpy as np

from facewright.faces.mask import face_size, feature_mask
from facewright.faces.types import Mask, Points

INSIDE = 0.25  # share of the detail carried over in the eyes, brows and lips


def highpass(image: np.ndarray, sigma: float) -> np.ndarray:
    """`image` (h x w x C float32) minus its Gaussian blur of `sigma` pixels (edges repeated)."""
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


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
    original = np.asarray(original)
    original = original.astype(np.float32) / (255.0 if original.dtype == np.uint8 else 1.0)
    if original.shape != face.shape:
        raise ValueError(f"face {face.shape} and original {original.shape} must be the same size")
    sigma = max(0.5, scale * face_size(points))
    weight = amount * detail_weight(face.shape, points, inside)[..., None]
    moved = face + weight * (highpass(original, sigma) - highpass(face, sigma))
    return np.clip(moved, 0.0, 1.0)
