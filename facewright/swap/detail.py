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

In time the model's face moves too little: its blinks and lip movements are smaller than the footage's.
`MotionTransfer` (--motion) adds, per face track, what the original's fine band in the eyes and lips changes
by against its own running mean: the motion, without the features that stay put.
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from facewright.config import SwapOptions
from facewright.faces.align import transform_points
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
    if original.dtype == np.uint8:
        original = original.astype(np.float32) / 255.0
    original = original.astype(np.float32, copy=False)  # a float32 region converted by the caller: not copied
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


MOTION_SECONDS = 0.2  # the time constant of a track's running reference: what changes faster is motion
MOTION_GAP = 0.5  # seconds: a track unseen this long (a gap, a seek, a preview's sparse frames) starts afresh
MOTION_MAX_SIDE = 512  # the aligned working copy's largest side, pixels: a face in 4K costs what one in 1080p does


@dataclasses.dataclass
class _TrackMotion:
    side: int  # the working copy's side, pixels, fixed for the track (so its reference stays put)
    reference: np.ndarray | None  # side x side x 3 float32: the band's running mean, in aligned pixels
    time: float  # the last frame's time, seconds


class MotionTransfer:
    """The original face's fast changes in the eyes and lips (a blink, the lips in speech) carried onto the
    new face, per face track.

    A model trained for minutes follows the expression but draws its blinks and lip movements smaller than
    the footage's: the face changes less from frame to frame than the real one did. What is left of the
    original once the new face is put in, `original - face`, in the band finer than RESTORE_WIDTH x the split
    (eyelids, lip outlines, creases), holds two things: the two people's different features, which stay put
    in the aligned face, and the original's motion. A running mean over the track (time constant `seconds`)
    is the first; what the current frame differs from it by is the second, and `amount` of it is added in
    the eyes and lips (feathered; not the brows, whose shape is much of a face's identity and which move
    little). So the identity that stays put is the model's, and what moves moves as in the footage. The
    running mean lives in aligned coordinates at about the frame's resolution, so it stays on the features
    while the head moves. A track's first frame (or the first after a gap of MOTION_GAP) adds nothing; a
    still image (no time) is returned unchanged.
    """

    def __init__(self, amount: float, scale: float, seconds: float = MOTION_SECONDS):
        self.amount, self.scale, self.seconds = amount, scale, seconds
        self._tracks: dict[int, _TrackMotion] = {}

    def __call__(self, track: int, time: float | None, face: np.ndarray, original: np.ndarray, points: Points,
                 matrix: np.ndarray, crop_side: int) -> np.ndarray:
        """The warped `face` (h x w x 3 RGB float32 0..1, a frame region) with the motion added. `original`:
        the frame's region (uint8 or float 0..1); `points`: the 68 landmarks in the region's pixels;
        `matrix`: 2 x 3, region pixels -> the model's crop of `crop_side` pixels. Returns a new array."""
        face = np.asarray(face, np.float32)
        if self.amount <= 0 or time is None or face.size == 0:
            return face.copy()
        state = self._tracks.get(track)
        if state is None or not 0 < time - state.time <= MOTION_GAP:
            # Tracks that ended are dropped (a film's hundreds of tracks would keep a reference each).
            self._tracks = {k: v for k, v in self._tracks.items() if 0 <= time - v.time <= MOTION_GAP}
            # The working copy at about the frame's resolution: the crop scaled so the face is its size in the frame.
            scale = face_size(points) / max(face_size(transform_points(points, matrix)), 1e-6)
            side = int(np.clip(round(scale * crop_side), 16, MOTION_MAX_SIDE))
            state = self._tracks[track] = _TrackMotion(side, None, time)
        aligned = state.side / crop_side * np.asarray(matrix, np.float64)
        residual = cv2.warpAffine(_unit(original, face.shape) - face, aligned, (state.side, state.side),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sigma = RESTORE_WIDTH * split_sigma(transform_points(points, aligned), self.scale)
        band = residual - _wide_blur(residual, sigma)
        if state.reference is None:
            state.reference = band
            return face.copy()
        motion = band - state.reference
        state.reference = state.reference + (1.0 - math.exp(-(time - state.time) / self.seconds)) * motion
        state.time = time
        height, width = face.shape[:2]
        back = cv2.warpAffine(motion, aligned, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        weight = self.amount * feature_mask((height, width), points, brows=False)[..., None]
        return np.clip(face + weight * back, 0.0, 1.0)
