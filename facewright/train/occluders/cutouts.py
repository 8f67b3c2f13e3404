"""Occluders as data and their pasting: `Cutout` (pixels and an exact alpha), the `OccluderBank` of real
cut-outs, `cutout` (the masked part of an image), `paste` (an occluder composited into an image, scaled and
rotated, with its alpha) and `real_occluder` (a bank cut-out varied for one paste).

The warp behind `paste` (`place`) also sizes occluders for `occlude` (in `sample`) without compositing them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.faces.types import Mask
from facewright.media.image import Frame

KINDS = ("hand", "face", "patch", "shape", "strands", "bar", "glasses", "cup")
POOLS = {"hand": "hands", "face": "faces", "patch": "patches"}  # real kind -> its OccluderBank list
MIN_AREA = 16.0  # alpha (or face) sum in pixels under which a mask is "nearly empty"
REAL_SIDE = (0.35, 0.9)  # longest side of a real cut-out, in units of the size
REAL_ROTATION = 30.0  # degrees either way
REAL_GAIN = 0.15  # brightness jitter of a real cut-out, either way
EDGE_STEEPEN = 1.5  # alpha slope gain after resampling: bilinear leaves a 1 px edge ~2 px wide, this ~1 px
AREA_FIRST = 0.5  # scales under this resize with INTER_AREA first: bilinear alone aliases


@dataclass(frozen=True)
class Cutout:
    """An occluder: pixels h x w x 3 RGB uint8 and alpha h x w float32 0..1 (1 = occluder), same h, w."""

    pixels: NDArray[np.uint8] = field(repr=False)
    alpha: NDArray[np.float32] = field(repr=False)
    kind: str  # one of KINDS

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.pixels.dtype != np.uint8 or self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"Cutout pixels must be h x w x 3 uint8, got {self.pixels.shape} {self.pixels.dtype}")
        if self.alpha.dtype != np.float32 or self.alpha.shape != self.pixels.shape[:2]:
            raise ValueError(f"Cutout alpha must be {self.pixels.shape[:2]} float32, got {self.alpha.shape} "
                             f"{self.alpha.dtype}")


@dataclass
class OccluderBank:
    """Real cut-outs to paste: hands (from frames where the hand model found hands), other people's faces, and
    patches of the sources' own non-face pixels. Any pool may be empty: the synthetic kinds need none."""

    hands: list[Cutout] = field(default_factory=list)
    faces: list[Cutout] = field(default_factory=list)
    patches: list[Cutout] = field(default_factory=list)

    def pool(self, kind: str) -> list[Cutout]:
        """The cut-outs of a real kind ("hand", "face", "patch"); empty for a drawn kind."""
        return getattr(self, POOLS[kind]) if kind in POOLS else []


def cutout(image: Frame, mask: Mask, kind: str) -> Cutout | None:
    """The part of `image` (H x W x 3 uint8) under `mask` (H x W float 0..1), cropped to the mask's bounding
    box; None when the mask is (nearly) empty."""
    check_kind(kind)
    if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"cutout needs an H x W x 3 image and an H x W mask, got {image.shape} and {mask.shape}")
    alpha = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if alpha.sum() < MIN_AREA:
        return None
    rows, cols = box(alpha > 0)
    return Cutout(image[rows, cols].copy(), alpha[rows, cols].copy(), kind)


def paste(image: Frame, occluder: Cutout, centre: tuple[float, float], scale: float = 1.0, angle: float = 0.0
          ) -> tuple[Frame, Mask]:
    """A new image with `occluder` composited with its centre at `centre` (x, y pixels), scaled and rotated
    (degrees); and its alpha in image coordinates (H x W float32 0..1). Parts outside the image are clipped."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"paste needs an H x W x 3 uint8 image, got {image.shape} {image.dtype}")
    if not scale > 0:
        raise ValueError(f"paste needs a positive scale, got {scale}")
    out = image.copy()
    alpha = np.zeros(image.shape[:2], np.float32)
    placed = place(occluder, image.shape[:2], centre, scale, angle, with_pixels=True)
    if placed is not None:
        (rows, cols), a, pixels = placed
        region = out[rows, cols].astype(np.float32)
        region += cv2.cvtColor(a, cv2.COLOR_GRAY2RGB) * (pixels.astype(np.float32) - region)  # numpy's h x w x 1
        out[rows, cols] = np.rint(region).astype(np.uint8)
        alpha[rows, cols] = a
    return out, alpha


# --- placing -------------------------------------------------------------------------------------------------


def place(occluder: Cutout, shape_hw: tuple[int, ...], centre: tuple[float, float], scale: float, angle: float,
           with_pixels: bool) -> tuple[tuple[slice, slice], NDArray[np.float32], NDArray[np.uint8] | None] | None:
    """The occluder warped into the image: the image region it covers, its alpha (and pixels) there; None when
    it falls outside the image."""
    pixels, alpha = occluder.pixels, occluder.alpha
    matrix = _matrix(alpha.shape, centre, scale, angle)
    if scale < AREA_FIRST and min(alpha.shape) * scale >= 1:  # shrink by area averaging, then warp the rest
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if with_pixels else None
        alpha = cv2.resize(alpha, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        shrink = np.array([[1 / scale, 0, 0.5 / scale - 0.5], [0, 1 / scale, 0.5 / scale - 0.5], [0, 0, 1]])
        matrix = matrix @ shrink  # resized pixel -> original pixel -> image
    x0, y0, x1, y1 = _footprint(matrix, alpha.shape, shape_hw)
    if x1 <= x0 or y1 <= y0:
        return None
    matrix = matrix - np.array([[0, 0, x0], [0, 0, y0]])
    a = cv2.warpAffine(alpha, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if not _whole_pixel_shift(matrix):  # bilinear spreads an edge over scale + 1 px: steepen it back to ~1 px
        a = (a - 0.5) * (EDGE_STEEPEN * max(1.0, scale)) + 0.5
    a = np.clip(a, 0.0, 1.0)
    warped = None if pixels is None else cv2.warpAffine(pixels, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                                       borderMode=cv2.BORDER_REPLICATE)
    return (slice(y0, y1), slice(x0, x1)), a, warped


def _whole_pixel_shift(matrix: NDArray) -> bool:
    """Whether a 2 x 3 affine only moves pixels by whole pixels (no resampling)."""
    (a, b, tx), (c, d, ty) = matrix.tolist()
    return a == d == 1 and b == c == 0 and tx.is_integer() and ty.is_integer()


def _matrix(shape_hw: tuple[int, ...], centre: tuple[float, float], scale: float, angle: float) -> NDArray:
    """2 x 3: occluder pixel -> image pixel, the occluder's centre landing on `centre`."""
    h, w = shape_hw[:2]
    middle = ((w - 1) / 2, (h - 1) / 2)
    matrix = cv2.getRotationMatrix2D(middle, angle, scale)
    matrix[:, 2] += (centre[0] - middle[0], centre[1] - middle[1])
    return matrix


def _footprint(matrix: NDArray, shape_hw: tuple[int, ...], image_hw: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) of the image pixels the warped occluder can touch, clipped to the image."""
    h, w = shape_hw[:2]
    (a, b, tx), (c, d, ty) = matrix[:2].tolist()  # plain floats: four corners are too few for numpy to pay
    corners = ((-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5))
    xs, ys = [a * x + b * y + tx for x, y in corners], [c * x + d * y + ty for x, y in corners]
    x0, y0, x1, y1 = math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)) + 1, math.ceil(max(ys)) + 1
    return max(0, x0), max(0, y0), min(image_hw[1], x1), min(image_hw[0], y1)


# --- real cut-outs -------------------------------------------------------------------------------------------


def real_occluder(source: Cutout, size: int, rng: np.random.Generator) -> Cutout:
    """A bank cut-out, flipped half the time, rotated, rescaled to REAL_SIDE of `size`, brightness-jittered."""
    if rng.random() < 0.5:
        source = Cutout(source.pixels[:, ::-1], source.alpha[:, ::-1], source.kind)
    scale = rng.uniform(*REAL_SIDE) * size / max(source.alpha.shape)
    angle = rng.uniform(-REAL_ROTATION, REAL_ROTATION)
    h, w = source.alpha.shape
    rad = math.radians(angle)
    side = (w * abs(math.cos(rad)) + h * abs(math.sin(rad)), w * abs(math.sin(rad)) + h * abs(math.cos(rad)))
    out_w, out_h = (max(1, math.ceil(s * scale) + 2) for s in side)
    canvas = Cutout(np.zeros((out_h, out_w, 3), np.uint8), np.zeros((out_h, out_w), np.float32), source.kind)
    placed = place(source, (out_h, out_w), ((out_w - 1) / 2, (out_h - 1) / 2), scale, angle, with_pixels=True)
    (rows, cols), alpha, pixels = placed
    canvas.alpha[rows, cols], canvas.pixels[rows, cols] = alpha, pixels
    gain = rng.uniform(1 - REAL_GAIN, 1 + REAL_GAIN) * (1 + rng.normal(0, 0.03, 3))
    canvas.pixels[:] = cv2.transform(canvas.pixels, np.diag(gain).astype(np.float32))
    return trimmed(canvas)


def trimmed(occluder: Cutout) -> Cutout:
    rows, cols = box(occluder.alpha > 0)
    return Cutout(occluder.pixels[rows, cols].copy(), occluder.alpha[rows, cols].copy(), occluder.kind)


def box(present: NDArray[np.bool_]) -> tuple[slice, slice]:
    """Slices around the True pixels (the whole array when there are none)."""
    rows, cols = np.flatnonzero(present.any(axis=1)), np.flatnonzero(present.any(axis=0))
    if not len(rows):
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown occluder kind {kind!r}; expected one of {', '.join(KINDS)}")
