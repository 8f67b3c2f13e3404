"""Blending: a swapped face crop put back into its frame, masked, scaled, warped, blended and sharpened.

Contracts, stated once: `Frame` is H x W x 3 RGB uint8; `Crop` is S x S x 3 (or h x w x 3) RGB float32 in
[0, 1], the model's output or a warped face region; `Mask` is float32 in [0, 1], one value per pixel;
`Matrix` is the 2 x 3 float64 frame -> crop similarity of `faces.align.alignment_matrix`. Pixel centres
are integers, as in faces.align. Every function returns new arrays and leaves its inputs alone.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.errors import OptionError
from facewright.faces.align import invert, transform_points
from facewright.faces.mask import blend_mask
from facewright.faces.types import Mask, Matrix
from facewright.media.image import Frame

Crop: TypeAlias = NDArray[np.float32]  # S x S x 3 (or h x w x 3), RGB, 0..1

_MASK_MODES: dict[str, Callable[[Mask, Mask], Mask]] = {
    # The default: where the model predicted an occluder (a hand, a microphone) out, the old frame stays.
    "intersect": np.minimum,
    "predicted": lambda predicted, hull: predicted,
    "hull": lambda predicted, hull: hull,
    "union": np.maximum,
    # The hull; what a mask model calls not face and the hands are cut out of it after (swap.occlusion).
    "occlusion": lambda predicted, hull: hull,
}
MASK_MODES = tuple(_MASK_MODES)
FACE_SCALES = (0.5, 1.5)  # DeepFaceLab's face scale of -50..+50 %
MAX_ERODE, MAX_BLUR = 0.5, 0.5  # fractions of the face size; past half of it there is no face left
_EMPTY = 1 / 512  # mask values under half a uint8 level do not change a pixel
_MIN_CLONE = 3  # seamlessClone fails on a mask under 3 pixels across; so thin a sliver needs no clone
_CLONE_PAD = 2  # seamlessClone zeroes the mask's outer pixel ring and reads the pixels around the mask


@dataclass(frozen=True)
class Warped:
    """A face crop warped into a frame, only over the box it covers.

    `box`: (x0, y0, x1, y1) frame pixels, ends exclusive, (0, 0, 0, 0) when the face misses the frame;
    `face`: h x w x 3 RGB float32 0..1 and `mask`: h x w float32 0..1, with h = y1 - y0 and w = x1 - x0.
    """

    box: tuple[int, int, int, int]
    face: Crop = field(repr=False)
    mask: Mask = field(repr=False)

    @property
    def region(self) -> tuple[slice, slice]:
        """(rows, columns) slices of the box: `frame[warped.region]` lines up with `face` and `mask`."""
        x0, y0, x1, y1 = self.box
        return slice(y0, y1), slice(x0, x1)

    @property
    def empty(self) -> bool:
        return self.mask.size == 0


def mask_modes() -> tuple[str, ...]:
    return MASK_MODES


def combine_masks(predicted: Mask, hull: Mask, mode: str = "intersect") -> Mask:
    """The mask to blend with, from the model's `predicted` mask and the landmark `hull` (both S x S float32
    0..1 in crop pixels): "intersect" (min), "union" (max), or either one alone. Returns a new S x S mask."""
    if mode not in _MASK_MODES:
        raise OptionError(f"unknown mask mode {mode!r}", fix=f"use one of {', '.join(MASK_MODES)}")
    predicted, hull = _check_mask(predicted, "predicted"), _check_mask(hull, "hull")
    if predicted.shape != hull.shape:
        raise ValueError(f"predicted mask {predicted.shape} and hull {hull.shape} differ in size")
    return np.clip(_MASK_MODES[mode](predicted, hull), 0.0, 1.0).astype(np.float32)


def refine_mask(mask: Mask, face_px: float, erode: float = 0.0, blur: float = 0.1) -> Mask:
    """Erode (a negative `erode` dilates), then feather, by fractions of the face size, so a mask looks the
    same at any resolution. `face_px`: the face's size in the mask's own pixels (`faces.mask.face_size` of
    landmarks in that space). `blur` is `feather`'s width: the edge becomes a ramp of about 2 * blur *
    face_px pixels centred on the eroded edge, so erode by about `blur` to keep the soft edge inside."""
    if not face_px > 0:
        raise ValueError(f"face_px must be positive, got {face_px}")
    if not -MAX_ERODE < erode < MAX_ERODE or not 0 <= blur < MAX_BLUR:
        raise OptionError(f"mask erode {erode} / blur {blur} out of range",
                          fix=f"use erode in (-{MAX_ERODE}, {MAX_ERODE}) and blur in [0, {MAX_BLUR}): "
                              "fractions of the face size")
    return blend_mask(_check_mask(mask, "mask"), erode * face_px, blur * face_px)


def scale_crop(crop: Crop, mask: Mask, scale: float) -> tuple[Crop, Mask]:
    """Zoom crop and mask about the crop's centre by `scale` (1.1: the new face 10% larger), same size.

    Image pixels beyond the crop's edge repeat the edge; the mask is 0 there.
    """
    crop, mask = _check_crop(crop, mask)
    if not FACE_SCALES[0] <= scale <= FACE_SCALES[1]:
        raise OptionError(f"face scale {scale} out of range", fix=f"use {FACE_SCALES[0]}-{FACE_SCALES[1]}")
    if scale == 1:
        return crop.copy(), mask.copy()
    height, width = mask.shape
    centre = np.array([(width - 1) / 2, (height - 1) / 2])  # between the middle pixel centres
    zoom = np.hstack([scale * np.eye(2), ((1 - scale) * centre)[:, None]])
    return _warp(crop, mask, zoom, (width, height))


def warp_to_frame(crop: Crop, mask: Mask, matrix: Matrix, frame_hw: tuple[int, ...]) -> Warped:
    """Crop (S x S x 3) and mask (S x S) warped into a frame of `frame_hw` (height, width, ...) by the inverse
    of `matrix` (frame -> crop), over just the box the crop's footprint covers, clipped to the frame.

    Sub-pixel: the same matrix that cut the crop puts it back. Cubic for the image (its edge repeated, never
    black), linear for the mask (0 beyond the crop). A crop that would shrink under half size is first
    area-averaged, as cubic sampling would skip pixels and alias.
    """
    crop, mask = _check_crop(crop, mask)
    crop, mask, to_frame = _prefilter(crop, mask, invert(matrix))
    box = _footprint(to_frame, mask.shape, frame_hw)
    if box is None:
        return Warped((0, 0, 0, 0), np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32))
    x0, y0, x1, y1 = box
    local = to_frame.copy()
    local[:, 2] -= (x0, y0)
    face, alpha = _warp(crop, mask, local, (x1 - x0, y1 - y0))
    return Warped(box, face, alpha)


def _prefilter(crop: Crop, mask: Mask, to_frame: Matrix) -> tuple[Crop, Mask, Matrix]:
    """Crop and mask resized (area average) to land at about half scale, and the matrix for the new size."""
    scale = math.sqrt(abs(np.linalg.det(to_frame[:, :2])))
    if scale >= 0.5:
        return crop, mask, to_frame
    height, width = mask.shape
    size = (max(2, round(2 * scale * width)), max(2, round(2 * scale * height)))
    step = np.array([width / size[0], height / size[1]])  # old pixels per new pixel
    # New pixel u' covers the old ones around step * (u' + 1/2) - 1/2.
    shrunk = to_frame.copy()
    shrunk[:, :2] = to_frame[:, :2] * step
    shrunk[:, 2] += to_frame[:, :2] @ ((step - 1) / 2)
    area = cv2.INTER_AREA
    return cv2.resize(crop, size, interpolation=area), cv2.resize(mask, size, interpolation=area), shrunk


def _footprint(to_frame: Matrix, crop_hw: tuple[int, ...], frame_hw: tuple[int, ...]
               ) -> tuple[int, int, int, int] | None:
    """Box (x0, y0, x1, y1; ends exclusive) of the frame pixels the warped mask can touch, clipped to the
    frame; None when it misses the frame."""
    height, width = crop_hw[:2]
    # A pixel past the outer pixel centres: the mask's linear weights reach that far.
    corners = transform_points(np.array([[-1, -1], [width, -1], [-1, height], [width, height]]), to_frame)
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, frame_hw[1]), min(y1, frame_hw[0])
    return (int(x0), int(y0), int(x1), int(y1)) if x0 < x1 and y0 < y1 else None


def _warp(crop: Crop, mask: Mask, matrix: Matrix, size_wh: tuple[int, int]) -> tuple[Crop, Mask]:
    face = cv2.warpAffine(crop, matrix, size_wh, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, matrix, size_wh, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0)
    # Cubic overshoots next to sharp edges; outside 0..1 a value would over-brighten or wrap in uint8.
    return np.clip(face, 0.0, 1.0), np.clip(alpha, 0.0, 1.0)


def feather_blend(frame: Frame, face: Crop, mask: Mask) -> Frame:
    """`frame` (H x W x 3 RGB uint8) with `face` (H x W x 3 RGB float32 0..1) alpha-blended in by `mask`
    (H x W, 0..1): a new uint8 frame. Where the mask is 0 the frame's pixels come back bit for bit."""
    frame, face, mask = _check_blend(frame, face, mask)
    base = frame.astype(np.float32)
    # base + 0 * (...) is base exactly, so untouched pixels round back to their own value.
    mixed = base + mask[..., None] * (face * 255 - base)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def poisson_blend(frame: Frame, face: Crop, mask: Mask) -> Frame:
    """Seamless clone (Perez et al. 2003, cv2.seamlessClone NORMAL_CLONE) of `face` into `frame` where
    `mask` > 0, then alpha-blended by `mask` itself, so a feathered mask (`refine_mask`) keeps the edge soft.
    Shapes as in `feather_blend`. The clone keeps the face's gradients and takes the frame's colors at the
    mask's edge, so a lighting difference between the two fades out. Works on the mask's bounding box only;
    a mask touching the frame's edge is fine, an empty one returns the frame unchanged, and a sliver under
    3 pixels across is alpha blended."""
    frame, face, mask = _check_blend(frame, face, mask)
    inside = mask >= _EMPTY
    if not inside.any():
        return frame.copy()
    window, pads = _window(inside, _CLONE_PAD)
    cloned = _seamless_clone(face[window], frame[window], inside[window], pads)
    if cloned is None:
        return feather_blend(frame, face, mask)
    out = frame.copy()
    out[window] = feather_blend(frame[window], cloned, mask[window])
    return out


def _seamless_clone(face: Crop, frame: Frame, inside: NDArray[np.bool_], pads: tuple[int, int, int, int]
                    ) -> Crop | None:
    """cv2.seamlessClone of `face` into `frame` where `inside`, all three first padded by `pads` (top, bottom,
    left, right) with their edge repeated; h x w x 3 float32 0..1, or None for a mask too thin to clone."""
    source, target = _pad(np.rint(face * 255).astype(np.uint8), pads), _pad(frame, pads)
    # A mask cut by the frame's edge goes on into the padding: the frame's edge pixels are then inside the
    # clone (seamlessClone gives the mask's own outer pixels the frame's values), not its boundary.
    hard = _pad(inside.astype(np.uint8) * 255, pads)
    hard[[0, -1], :] = hard[:, [0, -1]] = 0  # as seamlessClone would, so the box below is the one it sees
    x, y, width, height = cv2.boundingRect(hard)
    if min(width, height) < _MIN_CLONE:
        return None
    # seamlessClone centres the mask's bounding box on this point: it lands where it was.
    cloned = cv2.seamlessClone(source, target, hard, (x + width // 2, y + height // 2), cv2.NORMAL_CLONE)
    top, bottom, left, right = pads
    return cloned[top:cloned.shape[0] - bottom, left:cloned.shape[1] - right].astype(np.float32) / 255


def _window(inside: NDArray[np.bool_], pad: int) -> tuple[tuple[slice, slice], tuple[int, int, int, int]]:
    """Slices of the True pixels' bounding box grown by `pad` and clipped to the image, and the padding
    (top, bottom, left, right) that makes up for the clipping."""
    x, y, width, height = cv2.boundingRect(inside.astype(np.uint8))
    rows, cols = inside.shape
    y0, x0, y1, x1 = y - pad, x - pad, y + height + pad, x + width + pad
    pads = (max(-y0, 0), max(y1 - rows, 0), max(-x0, 0), max(x1 - cols, 0))
    return (slice(max(y0, 0), min(y1, rows)), slice(max(x0, 0), min(x1, cols))), pads


def _pad(image: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    return cv2.copyMakeBorder(np.ascontiguousarray(image), *pads, cv2.BORDER_REPLICATE)


def sharpen(image: Crop, amount: float, radius_px: float = 1.0) -> Crop:
    """Unsharp mask of an h x w x 3 RGB float32 0..1 image: image + amount * (image - gaussian(image,
    sigma = `radius_px` pixels)), clipped to 0..1. `amount` 0 is off (a copy); 0.3-0.8 is typical. Apply it
    to the face (crop or warped region), not to the whole frame."""
    image = np.asarray(image, np.float32)
    if amount < 0 or radius_px <= 0:
        raise OptionError(f"sharpen amount {amount} / radius {radius_px}",
                          fix="use an amount >= 0 and a radius > 0 pixels")
    if amount == 0:
        return image.copy()
    blurred = cv2.GaussianBlur(image, (0, 0), radius_px, borderType=cv2.BORDER_REPLICATE)
    return np.clip(image + amount * (image - blurred), 0.0, 1.0)


_BLENDS: dict[str, Callable[[Frame, Crop, Mask], Frame]] = {"alpha": feather_blend, "poisson": poisson_blend}


def blend_modes() -> tuple[str, ...]:
    return tuple(_BLENDS)


def blend(frame: Frame, face: Crop, mask: Mask, mode: str = "alpha") -> Frame:
    """The blend `mode` ("alpha": `feather_blend`, "poisson": `poisson_blend`); shapes as in those."""
    if mode not in _BLENDS:
        raise OptionError(f"unknown blend mode {mode!r}", fix=f"use one of {', '.join(_BLENDS)}")
    return _BLENDS[mode](frame, face, mask)


def paste_face(frame: Frame, warped: Warped, mode: str = "alpha") -> Frame:
    """A copy of `frame` with the warped face blended in over its box only (see `warp_to_frame`)."""
    out = np.array(frame, copy=True)
    if warped.empty:
        return out
    out[warped.region] = blend(frame[warped.region], warped.face, warped.mask, mode)
    return out


def _check_mask(mask: Mask, name: str) -> Mask:
    mask = np.asarray(mask, np.float32)
    if mask.ndim != 2:
        raise ValueError(f"{name}: expected an H x W mask, got {mask.shape}")
    return mask


def _check_crop(crop: Crop, mask: Mask) -> tuple[Crop, Mask]:
    crop, mask = np.asarray(crop, np.float32), _check_mask(mask, "mask")
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[:2] != mask.shape or min(mask.shape) < 2:
        raise ValueError(f"expected an S x S x 3 crop and an S x S mask, got {crop.shape} and {mask.shape}")
    return crop, mask


def _check_blend(frame: Frame, face: Crop, mask: Mask) -> tuple[Frame, Crop, Mask]:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected H x W x 3 uint8 RGB, got {getattr(frame, 'dtype', type(frame))} "
                         f"{getattr(frame, 'shape', '')}")
    face, mask = np.asarray(face, np.float32), _check_mask(mask, "mask")
    if face.shape != frame.shape or mask.shape != frame.shape[:2]:
        raise ValueError(f"face {face.shape} and mask {mask.shape} must match the frame {frame.shape}")
    return frame, np.clip(face, 0.0, 1.0), np.clip(mask, 0.0, 1.0)
