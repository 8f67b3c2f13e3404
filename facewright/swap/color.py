"""Color transfer: make the swapped face ("source") take the colors of the face it replaces ("reference").

Every mode is a *fit* on pixel samples that returns a *map* for any image, so statistics can be gathered once
per track and applied to every frame (per-frame fits make colors flicker). Modes, as a registry:

- `none`: identity.
- `rct`: Reinhard; per-channel mean and std matched in CIE Lab (D65, sRGB companding, L in 0..100).
- `lct`: linear covariance transfer in RGB, x -> Cr^1/2 Cs^-1/2 (x - ms) + mr.
- `mkl`: Monge-Kantorovich linear map, the optimal transport map between two Gaussians.
- `idt`: iterative distribution transfer (Pitie): random rotation, 1-D quantile matching per axis, repeat.
- `sot`: sliced optimal transport: each iteration averages the 1-D transport moves along 9 random directions.
- `hist`: per-channel histogram matching in RGB by quantile mapping.

All pixels are float32 RGB in [0, 1]; maps return float32 clipped to [0, 1]. idt and sot are baked into a
lookup cube so that applying them costs the same as the other modes (see CubeMap).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.errors import OptionError

Pixels = NDArray[np.float32]  # N x 3, RGB in [0, 1]
Image = NDArray[np.float32]  # H x W x 3, RGB in [0, 1]
Mask = NDArray[np.float32]  # H x W in [0, 1]

MIN_SAMPLES = 16  # below this a mean is noise and a covariance is singular: keep the colors as they are
RIDGE = 1e-6  # ~ the variance 8-bit rounding adds, (1/255)^2 / 12: keeps Cs^-1/2 finite on a flat patch, and bends real
# spreads little (a face's flattest color axis has a variance of ~1e-4: 1% of it moves its std by 0.5%)
STD_FLOOR = 0.01  # Lab units: a flat source channel keeps its value instead of dividing by ~0
QUANTILES = 256  # points per 1-D transport curve: enough for 8-bit data, small enough to store per track
CURVE_POINTS = 1024  # the curve resampled on an even grid, so applying it is a lookup, not a search
CUBE_SIZE = 33  # iterative maps are baked into a 33^3 lookup cube, the size .cube color grading files use
SLICED_SAMPLES = 8192  # idt and sot fit on at most this many: 32 per quantile step, and sorting dominates
ROW = 4096  # pixels per row when an image is laid out for cv2.remap (sides must stay under 32767)


class ColorMap(Protocol):
    def apply(self, image: Image) -> Image:
        """Map ... x 3 RGB (H x W x 3 or N x 3, any size); the same shape back, float32, clipped to [0, 1]."""
        ...


ColorFit = Callable[[Pixels, Pixels, np.random.Generator], ColorMap]  # (source, reference, rng) -> map
_REGISTRY: dict[str, ColorFit] = {}


def register_color(name: str) -> Callable[[ColorFit], ColorFit]:
    def add(fit: ColorFit) -> ColorFit:
        _REGISTRY[name] = fit
        return fit
    return add


def color_modes() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def fit_color(mode: str, source: Pixels, reference: Pixels, *, seed: int = 0) -> ColorMap:
    """Fit `mode` on N x 3 samples of the source and the reference; random modes are deterministic in `seed`.

    Fewer than MIN_SAMPLES samples on either side (a mask cut off at the frame border) gives the identity map:
    there is nothing to measure, and a wild guess would show more than an unmatched face.
    """
    fit = _REGISTRY.get(mode)
    if fit is None:
        raise OptionError(f"unknown color mode {mode!r}", fix=f"use one of {', '.join(color_modes())}")
    source, reference = (np.asarray(p, np.float32).reshape(-1, 3) for p in (source, reference))
    if min(len(source), len(reference)) < MIN_SAMPLES:
        return IdentityMap()
    return fit(source, reference, np.random.default_rng(seed))


def masked_pixels(image: Image, mask: Mask, limit: int = 20000, seed: int = 0) -> Pixels:
    """The N x 3 pixels where mask > 0.5, at most `limit` of them (a random subset, the same for the same seed)."""
    pixels = np.asarray(image, np.float32)[np.asarray(mask) > 0.5]
    if len(pixels) > limit:
        pixels = pixels[np.sort(np.random.default_rng(seed).choice(len(pixels), limit, replace=False))]
    return pixels


def transfer(source: Image, reference: Image, mask: Mask, mode: str, *, seed: int = 0) -> Image:
    """Recolor `source` (H x W x 3) like `reference` (same size), both measured inside `mask` (H x W): a fit per call.

    The whole of `source` is mapped, outside the mask too: the blend decides what shows, and a feathered edge
    must not switch between mapped and unmapped colors.
    """
    samples = (masked_pixels(image, mask, seed=seed) for image in (source, reference))
    return fit_color(mode, *samples, seed=seed).apply(source)


# sRGB primaries to XYZ (D65), with the white point they imply, so RGB white is exactly a = b = 0.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ / _WHITE[:, None])  # from white-relative XYZ
_F_TO_LAB = np.array([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]])  # L, a, b from f(X, Y, Z)
_LAB_TO_F = np.linalg.inv(_F_TO_LAB)
_DELTA = 6 / 29


def _affine(pixels: NDArray[np.float32], matrix: NDArray, offset: NDArray | float = 0.0) -> NDArray[np.float32]:
    """matrix @ p + offset for every 3-vector p of a ... x 3 float32 array (cv2: ~4x faster than numpy here)."""
    augmented = np.hstack([matrix, np.broadcast_to(offset, (3,))[:, None]]).astype(np.float32)
    return cv2.transform(pixels.reshape(-1, 1, 3), augmented).reshape(pixels.shape)


def rgb_to_lab(rgb: NDArray[np.float32]) -> NDArray[np.float32]:
    """sRGB in [0, 1] (... x 3) to CIE Lab, D65: L in 0..100, a and b roughly -128..127."""
    rgb = np.asarray(rgb, np.float32)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((np.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4)
    xyz = _affine(linear.astype(np.float32), _RGB_TO_XYZ / _WHITE[:, None])
    f = np.where(xyz > _DELTA**3, np.cbrt(np.maximum(xyz, _DELTA**3)), xyz / (3 * _DELTA**2) + 4 / 29)
    return _affine(f.astype(np.float32), _F_TO_LAB, np.array([-16.0, 0.0, 0.0]))


def lab_to_rgb(lab: NDArray[np.float32]) -> NDArray[np.float32]:
    """CIE Lab (D65) to sRGB (... x 3), not clipped: out-of-gamut colors fall outside [0, 1]."""
    f = _affine(np.asarray(lab, np.float32), _LAB_TO_F, _LAB_TO_F @ [16.0, 0.0, 0.0])
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29)).astype(np.float32)
    linear = _affine(xyz, _XYZ_TO_RGB)
    gamma = 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055
    return np.where(linear <= 0.0031308, linear * 12.92, gamma).astype(np.float32)


def _padded(count: int) -> int:
    """count rounded up to whole rows of ROW: cv2.remap takes 2-D maps with sides under 32767."""
    return -(-count // ROW) * ROW


def _clip(pixels: NDArray) -> NDArray[np.float32]:
    return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)


@dataclass(frozen=True)
class IdentityMap:
    def apply(self, image: Image) -> Image:
        return _clip(np.asarray(image, np.float32))


@dataclass(frozen=True)
class LabMap:
    """Lab -> Lab * scale + shift, per channel."""

    scale: NDArray[np.float32]  # 3
    shift: NDArray[np.float32]  # 3

    def apply(self, image: Image) -> Image:
        return _clip(lab_to_rgb(_affine(rgb_to_lab(image), np.diag(self.scale), self.shift)))


@dataclass(frozen=True)
class AffineMap:
    """RGB -> matrix @ RGB + offset."""

    matrix: NDArray[np.float64]  # 3 x 3
    offset: NDArray[np.float64]  # 3

    def apply(self, image: Image) -> Image:
        return _clip(_affine(np.asarray(image, np.float32), self.matrix, self.offset))


@dataclass(frozen=True)
class Slice:
    """One transport step: move each pixel along the unit `axes` by the 1-D moves of its projections, times `weight`.

    Row j of `moves` is the move (transported minus original projection) at CURVE_POINTS even points from low[j]
    to high[j]. Beyond that range the move at the nearer end applies, a constant shift, so colors the fit never
    saw (highlights outside the mask) keep their differences instead of being flattened.
    """

    axes: NDArray[np.float32]  # P x 3, unit rows
    low: NDArray[np.float32]  # P
    high: NDArray[np.float32]  # P
    moves: NDArray[np.float32]  # P x CURVE_POINTS
    weight: float

    def __call__(self, channels: NDArray[np.float32]) -> NDArray[np.float32]:
        """Move 3 x N pixels (channel-first: numpy is many times slower on N rows of 3); no clipping.

        einsum, not matmul: BLAS gains nothing on P x 3 operands, and its threads stall when the cores are busy.
        The curves are read by cv2.remap (bilinear, clamped at the ends), faster than numpy's gathers.
        """
        count, points = self.moves.shape
        width = channels.shape[1]
        scale = (points - 1) / (self.high - self.low)
        position = np.zeros((count, _padded(width)), np.float32)
        np.einsum("pc,cn->pn", self.axes * scale[:, None], channels, out=position[:, :width])
        position[:, :width] -= (self.low * scale)[:, None]
        np.clip(position, -1, points, out=position)  # past the ends the end value holds; remap wants small values
        row = np.zeros((position.shape[1] // ROW, ROW), np.float32)  # each curve is a 1-row image
        moves = np.stack([cv2.remap(self.moves[j : j + 1], position[j].reshape(-1, ROW), row, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for j in range(count)])
        return channels + np.einsum("pc,pn->cn", self.weight * self.axes, moves.reshape(count, -1)[:, :width])


@dataclass(frozen=True)
class SlicedMap:
    """A sequence of Slices, replayed on every pixel: the exact form of hist, idt and sot."""

    steps: tuple[Slice, ...]

    def apply(self, image: Image) -> Image:
        channels = np.ascontiguousarray(np.asarray(image, np.float32).reshape(-1, 3).T)
        for step in self.steps:
            channels = step(channels)
        return _clip(channels.T).reshape(np.shape(image))


@dataclass(frozen=True)
class CubeMap:
    """A map baked into a lookup cube, applied by trilinear interpolation at a fixed cost (idt, sot).

    Replaying the slices costs 20-60 ms a frame at 256 x 256, the cube 2-3 ms. It also smooths: the exact maps
    wiggle finer than the 1/32 grid, so pixels differ from `exact` (the baked map) by ~0.008 on average on a
    real face, while the distance to the reference's colors stays about the same. The cube has CUBE_SIZE^3 RGB
    entries laid out for cv2.remap: row b * size + g, column r.
    """

    cube: NDArray[np.float32]  # size^2 x size x 3
    exact: ColorMap

    @classmethod
    def bake(cls, exact: ColorMap, size: int = CUBE_SIZE) -> CubeMap:
        blue, green, red = np.meshgrid(*[np.linspace(0, 1, size, dtype=np.float32)] * 3, indexing="ij")
        return cls(exact.apply(np.stack([red, green, blue], axis=-1).reshape(size * size, size, 3)), exact)

    def apply(self, image: Image) -> Image:
        size = self.cube.shape[1]
        pixels = np.asarray(image, np.float32).reshape(-1, 3)
        laid_out = np.zeros((_padded(len(pixels)) // ROW, ROW, 3), np.float32)
        laid_out.reshape(-1, 3)[: len(pixels)] = np.clip(pixels, 0, 1) * (size - 1)
        red, green, blue = cv2.split(laid_out)
        plane = np.minimum(np.floor(blue), size - 2)
        near, far = (cv2.remap(self.cube, red, plane * size + green + offset, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE) for offset in (0, size))
        mixed = near + (far - near) * cv2.merge([blue - plane] * 3)
        return _clip(mixed.reshape(-1, 3)[: len(pixels)]).reshape(np.shape(image))


def _covariance(pixels: Pixels) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean (3) and covariance (3 x 3, population, ridge added) of N x 3 pixels, in float64."""
    pixels = pixels.astype(np.float64)
    mean = pixels.mean(axis=0)
    centered = pixels - mean
    return mean, centered.T @ centered / len(pixels) + RIDGE * np.eye(3)


def _matrix_power(matrix: NDArray[np.float64], power: float) -> NDArray[np.float64]:
    """Power of a symmetric positive semi-definite 3 x 3 matrix, through its eigendecomposition."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(values, 1e-12) ** power) @ vectors.T


def _quantiles(values: NDArray[np.float32]) -> NDArray[np.float32]:
    """QUANTILES evenly spaced quantiles (minimum to maximum) of each row of P x N values: P x QUANTILES.

    Sort and interpolate: np.quantile with hundreds of levels is ~10x slower.
    """
    ordered = np.sort(values, axis=1)
    position = np.linspace(0, values.shape[1] - 1, QUANTILES)
    below = position.astype(np.int64)
    above = np.minimum(below + 1, values.shape[1] - 1)
    frac = (position - below).astype(np.float32)
    return ordered[:, below] * (1 - frac) + ordered[:, above] * frac


def _fit_slice(source: NDArray[np.float32], reference: NDArray[np.float32], axes: NDArray, weight: float) -> Slice:
    """The Slice matching the projections of 3 x N `source` on each axis to those of 3 x M `reference`.

    In 1-D the optimal transport is monotone: the q-quantile goes to the q-quantile.
    """
    axes = axes.astype(np.float32)
    source_q, reference_q = (_quantiles(np.einsum("pc,cn->pn", axes, x)) for x in (source, reference))
    low, high = source_q[:, 0], np.maximum(source_q[:, -1], source_q[:, 0] + 1e-6)  # a flat projection too
    grid = np.linspace(low, high, CURVE_POINTS, axis=1)
    moves = np.stack([_transport(g, s, r) - g for g, s, r in zip(grid, source_q, reference_q, strict=True)])
    return Slice(axes, low, high, moves.astype(np.float32), weight)


def _transport(at: NDArray, source_q: NDArray, reference_q: NDArray) -> NDArray[np.float64]:
    """The 1-D map source_q -> reference_q (quantile to quantile) evaluated at `at`.

    A value that fills several source quantiles (8-bit levels, a flat patch) goes to the mean of their
    reference quantiles, the middle of where its mass lands, not to the last of them (np.interp on ties).
    """
    levels, group = np.unique(source_q, return_inverse=True)
    return np.interp(at, levels, np.bincount(group, weights=reference_q) / np.bincount(group))


def _subsample(pixels: Pixels, limit: int, rng: np.random.Generator) -> Pixels:
    return pixels[rng.choice(len(pixels), limit, replace=False)] if len(pixels) > limit else pixels


def _rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    """A random 3 x 3 orthonormal matrix (QR of a Gaussian matrix, signs fixed so it is uniformly distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


@register_color("none")
def _fit_none(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    return IdentityMap()


@register_color("rct")
def _fit_rct(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    source_lab, reference_lab = rgb_to_lab(source).astype(np.float64), rgb_to_lab(reference).astype(np.float64)
    scale = reference_lab.std(axis=0) / np.maximum(source_lab.std(axis=0), STD_FLOOR)
    shift = reference_lab.mean(axis=0) - source_lab.mean(axis=0) * scale
    return LabMap(scale.astype(np.float32), shift.astype(np.float32))


@register_color("lct")
def _fit_lct(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    (source_mean, source_cov), (reference_mean, reference_cov) = _covariance(source), _covariance(reference)
    matrix = _matrix_power(reference_cov, 0.5) @ _matrix_power(source_cov, -0.5)
    return AffineMap(matrix, reference_mean - matrix @ source_mean)


@register_color("mkl")
def _fit_mkl(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    (source_mean, source_cov), (reference_mean, reference_cov) = _covariance(source), _covariance(reference)
    root, inverse_root = _matrix_power(source_cov, 0.5), _matrix_power(source_cov, -0.5)
    matrix = inverse_root @ _matrix_power(root @ reference_cov @ root, 0.5) @ inverse_root
    return AffineMap(matrix, reference_mean - matrix @ source_mean)


@register_color("hist")
def _fit_hist(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    return SlicedMap((_fit_slice(source.T.copy(), reference.T.copy(), np.eye(3), 1.0),))


def _fit_sliced(source: Pixels, reference: Pixels, rng: np.random.Generator, iterations: int, bases: int) -> ColorMap:
    """`iterations` steps, each along `bases` random orthonormal bases with their moves averaged.

    Orthonormal triples rather than loose random directions: one basis moves a pixel by the full 1-D transport
    on every axis, so the average of several is a full step, with no guessed step size.
    """
    source, reference = (_subsample(x, SLICED_SAMPLES, rng).T.copy() for x in (source, reference))
    steps = []
    for _ in range(iterations):
        axes = np.concatenate([_rotation(rng) for _ in range(bases)])
        steps.append(_fit_slice(source, reference, axes, 1.0 / bases))
        source = steps[-1](source)
    return CubeMap.bake(SlicedMap(tuple(steps)))


@register_color("idt")
def _fit_idt(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    return _fit_sliced(source, reference, rng, iterations=10, bases=1)


@register_color("sot")
def _fit_sot(source: Pixels, reference: Pixels, rng: np.random.Generator) -> ColorMap:
    return _fit_sliced(source, reference, rng, iterations=8, bases=3)  # 9 directions per iteration
