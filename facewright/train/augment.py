"""Training augmentation on the device: batched torch ops on uint8 crops, deterministic for a `torch.Generator`.

The idea (DeepFaceLab's "random warp"): the network sees a randomly warped face and must output the unwarped
one, so it learns to rebuild a face instead of copying pixels. A random similarity transform (rotation, scale,
shift, optional flip) and random colors are shared by input and target; only the input gets the smooth
elastic warp. Images, masks and eyes+mouth masks go through one grid, so they stay aligned pixel for pixel.

Conventions: images are N x 3 x H x W float RGB in [0, 1] (uint8 where named `_u8`), masks N x 1 x H x W in
[0, 1]. Geometry uses normalized coordinates ([-1, 1] across the image, `F.affine_grid`, align_corners=False).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# sRGB (D65) linear RGB -> CIE XYZ, and the reference white as its row sums so white maps to exactly L=100, a=b=0.
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_LAB_DELTA = 6.0 / 29.0


def to_float(images_u8: Tensor) -> Tensor:
    """uint8 N x C x H x W -> float32 in [0, 1] on the same device."""
    if images_u8.dtype != torch.uint8:
        raise ValueError(f"to_float expects uint8, got {images_u8.dtype}")
    return images_u8.float() / 255.0


def from_crops(crops: np.ndarray, device: torch.device | str) -> Tensor:
    """N x S x S x 3 uint8 numpy crops (RGB) -> N x 3 x S x S float32 in [0, 1] on `device`."""
    return to_float(torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2))


# --- geometry -------------------------------------------------------------------------------------------------


def random_similarity(n: int, *, rotate_deg: float = 10.0, scale: float = 0.05, shift: float = 0.05,
                      flip: bool = True, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
    """N x 2 x 3 random similarity transforms (output -> input sampling, normalized coordinates).

    Uniform rotation in [-rotate_deg, rotate_deg] degrees, scale in [1 - scale, 1 + scale], shift in
    [-shift, shift] of the image side on each axis, and with `flip` a horizontal flip with p = 0.5.
    """
    u = torch.rand(n, 5, generator=generator, device=device) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1 + u[:, 1] * scale
    mirror = torch.where(u[:, 4] < 0, -1.0, 1.0) if flip else torch.ones_like(zoom)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    shifts = u[:, 2:4] * (2 * shift)  # the normalized range spans 2 units per image side
    row0 = torch.stack([cos * mirror, -sin, shifts[:, 0]], dim=1)
    row1 = torch.stack([sin * mirror, cos, shifts[:, 1]], dim=1)
    return torch.stack([row0, row1], dim=1)


def random_warp_field(n: int, size: int, *, strength: float = 0.05, cells: int = 5,
                      generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    """N x size x size x 2 smooth random offsets (x, y) in normalized coordinates.

    Interior points of a `cells` x `cells` control grid move uniformly by up to `strength` of the image side;
    the outer ring stays put, so the image borders do not move. Bicubic upsampling makes the field smooth.
    strength 0 gives exact zeros.
    """
    if cells < 3:
        raise ValueError(f"random_warp_field needs cells >= 3 (an interior), got {cells}")
    offsets = (torch.rand(n, 2, cells - 2, cells - 2, generator=generator, device=device) * 2 - 1) * (2 * strength)
    control = F.pad(offsets, (1, 1, 1, 1))
    # align_corners=True puts the control ring exactly on the border pixels, so borders get zero offset.
    field = F.interpolate(control, size=(size, size), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1).contiguous()


def sample_grid(theta: Tensor, size: int, warp: Tensor | None = None) -> Tensor:
    """N x size x size x 2 sampling grid for `warp`: affine_grid(theta) plus an optional offset field."""
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must be N x 2 x 3, got {tuple(theta.shape)}")
    n = theta.shape[0]
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    if warp is None:
        return grid
    if warp.shape != grid.shape:
        raise ValueError(f"warp must be {tuple(grid.shape)} (N x size x size x 2), got {tuple(warp.shape)}")
    return grid + warp


def warp(images: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "reflection") -> Tensor:
    """Resample N x C x H x W `images` at `grid` (N x H' x W' x 2) -> N x C x H' x W'.

    Reflection padding: a rotated face fills its corners with plausible skin and background instead of black
    wedges the network would have to learn. Sample masks with the same grid and padding so they stay aligned.
    """
    if images.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != images.shape[0]:
        raise ValueError(f"warp needs N x C x H x W images and an N x H x W x 2 grid, "
                         f"got {tuple(images.shape)} and {tuple(grid.shape)}")
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode=padding_mode, align_corners=False)


# --- color spaces ---------------------------------------------------------------------------------------------


def _check_rgb(images: Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} expects N x 3 x H x W, got {tuple(images.shape)}")


def rgb_to_hsv(images: Tensor) -> Tensor:
    """RGB in [0, 1] -> HSV, N x 3 x H x W; hue in [0, 1) as a fraction of a turn, saturation and value in [0, 1]."""
    _check_rgb(images, "rgb_to_hsv")
    r, g, b = images.unbind(1)
    value, argmax = images.max(dim=1)
    delta = value - images.min(dim=1).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))  # grey pixels: any hue, avoid 0/0
    hue = torch.where(argmax == 0, ((g - b) / safe) % 6, torch.where(argmax == 1, (b - r) / safe + 2,
                                                                     (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), 0.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(images: Tensor) -> Tensor:
    """HSV (hue in turns, any real value; saturation, value in [0, 1]) N x 3 x H x W -> RGB in [0, 1]."""
    _check_rgb(images, "hsv_to_rgb")
    hue, saturation, value = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    k = (n + hue * 6) % 6
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return value - value * saturation * ramp


def _matrix(images: Tensor, inverse: bool) -> Tensor:
    m = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)
    m = torch.linalg.inv(m) if inverse else m
    return m.to(device=images.device, dtype=images.dtype)


def _apply(matrix: Tensor, images: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", matrix, images)


def rgb_to_lab(images: Tensor) -> Tensor:
    """sRGB (D65) in [0, 1] -> CIE Lab, N x 3 x H x W; L in [0, 100], a and b roughly in [-128, 127]."""
    _check_rgb(images, "rgb_to_lab")
    linear = torch.where(images <= 0.04045, images / 12.92, ((images.clamp(min=0) + 0.055) / 1.055) ** 2.4)
    matrix = _matrix(images, inverse=False)
    xyz = _apply(matrix, linear) / matrix.sum(dim=1).view(1, 3, 1, 1)
    f = torch.where(xyz > _LAB_DELTA**3, xyz.clamp(min=1e-12) ** (1 / 3), xyz / (3 * _LAB_DELTA**2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(images: Tensor) -> Tensor:
    """CIE Lab -> sRGB (D65), N x 3 x H x W. Out-of-gamut colors come back outside [0, 1]: clamp if needed."""
    _check_rgb(images, "lab_to_rgb")
    lightness, a, b = images.unbind(1)
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = torch.where(f > _LAB_DELTA, f**3, 3 * _LAB_DELTA**2 * (f - 4 / 29))
    white = _matrix(images, inverse=False).sum(dim=1).view(1, 3, 1, 1)
    linear = _apply(_matrix(images, inverse=True), xyz * white)
    return torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear.clamp(min=0) ** (1 / 2.4) - 0.055)


# --- color augmentation ---------------------------------------------------------------------------------------


def color_jitter(images: Tensor, *, hue: float = 0.02, saturation: float = 0.1, value: float = 0.1,
                 generator: torch.Generator | None = None) -> Tensor:
    """Per-sample random HSV change of N x 3 x H x W RGB in [0, 1]: hue shifted by up to `hue` turns,
    saturation and value scaled by [1 - x, 1 + x]. All ranges zero returns `images` unchanged."""
    _check_rgb(images, "color_jitter")
    if hue == 0 and saturation == 0 and value == 0:
        return images
    u = torch.rand(images.shape[0], 3, 1, 1, generator=generator, device=images.device, dtype=images.dtype) * 2 - 1
    hsv = rgb_to_hsv(images)
    h = hsv[:, 0:1] + u[:, 0:1] * hue
    s = (hsv[:, 1:2] * (1 + u[:, 1:2] * saturation)).clamp(0, 1)
    v = (hsv[:, 2:3] * (1 + u[:, 2:3] * value)).clamp(0, 1)
    return hsv_to_rgb(torch.cat([h, s, v], dim=1))


def _masked_stats(lab: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and (population) std of N x 3 x H x W, weighted by N x 1 x H x W `mask`."""
    weight = torch.ones_like(lab[:, :1]) if mask is None else mask.to(lab.dtype)
    total = weight.sum(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    mean = (lab * weight).sum(dim=(2, 3), keepdim=True) / total
    var = (((lab - mean) ** 2) * weight).sum(dim=(2, 3), keepdim=True) / total
    return mean, var.sqrt()


def _check_mask(mask: Tensor | None, images: Tensor, name: str) -> None:
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != images.shape[0]
                             or mask.shape[2:] != images.shape[2:]):
        raise ValueError(f"{name} must be {images.shape[0]} x 1 x {images.shape[2]} x {images.shape[3]}, "
                         f"got {tuple(mask.shape)}")


def reinhard_transfer(images: Tensor, reference: Tensor, mask: Tensor | None = None,
                      ref_mask: Tensor | None = None) -> Tensor:
    """Reinhard color transfer (RCT): move each image's Lab mean and std to its reference's.

    images: N x 3 x H x W RGB in [0, 1]; reference: N x 3 x H' x W' (one per image) or 1 x 3 x H' x W' (one
    for all). Statistics are taken inside `mask` / `ref_mask` (N x 1 x H x W weights) when given, and the
    change is applied to every pixel so the face and its surroundings shift together. Result clamped to [0, 1].
    """
    _check_rgb(images, "reinhard_transfer images")
    _check_rgb(reference, "reinhard_transfer reference")
    if reference.shape[0] not in (1, images.shape[0]):
        raise ValueError(f"reference must hold 1 or {images.shape[0]} images, got {reference.shape[0]}")
    _check_mask(mask, images, "mask")
    _check_mask(ref_mask, reference, "ref_mask")
    lab = rgb_to_lab(images)
    mean, std = _masked_stats(lab, mask)
    ref_mean, ref_std = _masked_stats(rgb_to_lab(reference.to(images.dtype)), ref_mask)
    moved = (lab - mean) * (ref_std / std.clamp(min=1e-6)) + ref_mean
    return lab_to_rgb(moved).clamp(0, 1)


# --- the batch augmenter --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentOptions:
    rotate_deg: float = 10.0  # a few degrees: aligned crops differ by little rotation, more blurs the face
    scale: float = 0.05
    shift: float = 0.05  # fraction of the image side
    flip: bool = True
    warp: float = 0.05  # elastic warp, fraction of the side per control point (0: off, inputs == targets)
    warp_cells: int = 5  # control grid; the outer ring is fixed, so 5 gives a 3 x 3 movable interior
    hue: float = 0.02  # turns
    saturation: float = 0.1
    value: float = 0.1
    color_transfer: bool = False  # RCT toward the `reference` batch (A toward B's colors)


@dataclass(frozen=True)
class Batch:
    """One augmented batch, float32 on the crops' device."""

    inputs: Tensor  # N x 3 x R x R RGB in [0, 1]: transformed, colored and warped
    targets: Tensor  # N x 3 x R x R: the same transform and colors, not warped
    masks: Tensor  # N x 1 x R x R in [0, 1], aligned with targets
    priority: Tensor | None  # N x 1 x R x R eyes+mouth, aligned with targets (None when not given)


class Augmenter:
    """Turns uint8 crops on the device into a `Batch` at `resolution`, all batched torch ops."""

    def __init__(self, options: AugmentOptions, resolution: int, generator: torch.Generator | None = None):
        self.options, self.resolution, self.generator = options, resolution, generator

    @torch.no_grad()
    def __call__(self, images_u8: Tensor, masks_u8: Tensor, priority_u8: Tensor | None = None,
                 reference: Tensor | None = None, *, reference_masks: Tensor | None = None) -> Batch:
        """images_u8 N x 3 x S x S, masks_u8 and priority_u8 N x 1 x S x S (uint8, 255 = in); reference:
        N or 1 x 3 x H x W RGB (uint8, or float in [0, 1]) whose colors `color_transfer` moves the images
        toward, using face statistics when `reference_masks` is given and whole-frame statistics otherwise."""
        self._check(images_u8, masks_u8, priority_u8)
        opts, gen, device, n = self.options, self.generator, images_u8.device, images_u8.shape[0]
        images, masks = self._resize(to_float(images_u8)), self._resize(to_float(masks_u8))
        if opts.color_transfer and reference is not None:
            ref = to_float(reference) if reference.dtype == torch.uint8 else reference.float()
            ref_masks = None if reference_masks is None else self._as_float(reference_masks)
            images = reinhard_transfer(images, ref, masks if ref_masks is not None else None, ref_masks)
        images = color_jitter(images, hue=opts.hue, saturation=opts.saturation, value=opts.value, generator=gen)
        theta = random_similarity(n, rotate_deg=opts.rotate_deg, scale=opts.scale, shift=opts.shift, flip=opts.flip,
                                  generator=gen, device=device)
        layers = [images, masks] + ([] if priority_u8 is None else [self._resize(to_float(priority_u8))])
        # One grid_sample for target image, mask and priority: they cannot drift apart.
        targets = warp(torch.cat(layers, dim=1), sample_grid(theta, self.resolution))
        if opts.warp > 0:
            field = random_warp_field(n, self.resolution, strength=opts.warp, cells=opts.warp_cells, generator=gen,
                                      device=device)
            inputs = warp(images, sample_grid(theta, self.resolution, field))
        else:
            inputs = targets[:, :3]
        priority = targets[:, 4:5] if priority_u8 is not None else None
        return Batch(inputs.clamp(0, 1), targets[:, :3].clamp(0, 1), targets[:, 3:4].clamp(0, 1),
                     None if priority is None else priority.clamp(0, 1))

    def _check(self, images: Tensor, masks: Tensor, priority: Tensor | None) -> None:
        square = images.ndim == 4 and images.shape[1] == 3 and images.shape[2] == images.shape[3]
        if images.dtype != torch.uint8 or not square:
            raise ValueError(f"images must be uint8 N x 3 x S x S, got {images.dtype} {tuple(images.shape)}")
        expected = (images.shape[0], 1, *images.shape[2:])
        for name, mask in (("masks", masks), ("priority", priority)):
            if mask is not None and (mask.dtype != torch.uint8 or tuple(mask.shape) != expected):
                raise ValueError(f"{name} must be uint8 {expected}, got {mask.dtype} {tuple(mask.shape)}")
        gen = self.generator
        if gen is not None and gen.device.type != images.device.type:
            raise ValueError(f"the generator is on {gen.device} but the images are on {images.device}")

    def _as_float(self, images: Tensor) -> Tensor:
        return to_float(images) if images.dtype == torch.uint8 else images.float()

    def _resize(self, images: Tensor) -> Tensor:
        if images.shape[-1] == self.resolution:
            return images
        size = (self.resolution, self.resolution)
        return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
