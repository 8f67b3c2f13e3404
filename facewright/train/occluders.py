"""Synthetic occluders: things pasted in front of a face, with an exact alpha, for occlusion-aware masks.

The mask network (like DeepFaceLab's XSeg, but with no hand-drawn labels) learns "face" as the face region from
landmarks minus whatever `occlude` pastes over the crop; the occlusion benchmark pastes `make_occluder`'s
occluders over video frames with `paste` and checks that a swap keeps them.

Contract:
- An occluder is a `Cutout`: RGB uint8 pixels and float32 alpha in 0..1 (1 = occluder), both h x w. A paste is
  exactly `image * (1 - alpha) + pixels * alpha`, rounded, and the returned alpha is that alpha, so
  `label * (1 - alpha)` says how much of each pixel still shows the face. Occluders are opaque: alpha falls
  over ~1 px at their edges (anti-aliased, never blurred; kept so through resampling by steepening the
  resampled alpha) and is fractional elsewhere only on lines thinner than a pixel (strands, thin frames).
- `make_occluder(kind, size, rng)` makes one of KINDS sized for an image (or a face) of side `size`. The real
  kinds ("hand", "face", "patch") come from an `OccluderBank` of cut-outs (`cutout`); the others are drawn.
- Deterministic for a given `np.random.Generator` state; numpy and cv2 only; inputs are never modified.
Coordinates are pixels, x right and y down, pixel centres on integers (as in cv2); angles are degrees,
counter-clockwise on screen (as `cv2.getRotationMatrix2D`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.faces.types import Mask
from facewright.media.image import Frame

KINDS = ("hand", "face", "patch", "shape", "strands", "bar", "glasses", "cup")
POOLS = {"hand": "hands", "face": "faces", "patch": "patches"}  # real kind -> its OccluderBank list
# Hands and plain shapes are the commonest and most varied occluders in real footage; every kind stays
# frequent enough to be learned.
KIND_WEIGHTS = {"hand": 4.0, "face": 1.0, "patch": 1.5, "shape": 3.0, "strands": 1.5, "bar": 2.0, "glasses": 1.0,
                "cup": 1.0}
MIN_AREA = 16.0  # alpha (or face) sum in pixels under which a mask is "nearly empty"
COVER = (0.05, 0.5)  # share of the face a sample's occluders cover, label-weighted
GOAL = (0.08, 0.42)  # total share aimed at, inside COVER so the fit's misses mostly stay inside it
FACE_TRIES = 16  # random draws inside the label's box to find a face pixel
ATTEMPTS = 8  # draws of a whole sample before giving up and returning it clean (a tiny or thin label)
FIT_STEPS = 3  # scale corrections per occluder to reach its share of the goal
FIT_SCALE = (0.25, 2.5)  # paste scales `occlude` may use on an occluder made for its size
FIXED_SCALE = ("strands", "glasses")  # sized by the face, not by the share to cover: strands stay thin
BORDER_ENTRY = 0.35  # how often an occluder comes in from the crop's border (a hand, a mic), not from inside
BORDER_SIDES = (0.4, 0.1, 0.25, 0.25)  # bottom, top, left, right: hands and mics mostly come from below
JITTER = 0.08  # of the size: how far from a face pixel an occluder's centre may be
SHADOW = 0.25  # how often an occluder casts a soft shadow (the face under a shadow is still face)
PALETTE = (48, 16)  # sample pixels from outside the face, and from anywhere, as colours for textures
PALETTE_USE = 0.5  # chance a texture colour comes from the palette rather than at random
REAL_SIDE = (0.35, 0.9)  # longest side of a real cut-out, in units of the size
REAL_ROTATION = 30.0  # degrees either way
REAL_GAIN = 0.15  # brightness jitter of a real cut-out, either way
EDGE_STEEPEN = 1.5  # alpha slope gain after resampling: bilinear leaves a 1 px edge ~2 px wide, this ~1 px
AREA_FIRST = 0.5  # scales under this resize with INTER_AREA first: bilinear alone aliases
SHIFT = 4  # fractional bits of cv2 drawing coordinates
GRAIN = 8  # levels of luminance noise on drawn textures, at most
HAIR = ((25, 20, 18), (55, 38, 26), (95, 62, 38), (140, 90, 50), (200, 165, 110), (160, 155, 150))
FRAMES = ((15, 15, 18), (45, 35, 30), (90, 55, 30), (180, 150, 80), (170, 170, 175))  # black, tortoise, gold...
_SIDES = np.cumsum(BORDER_SIDES)
_ROUND = np.linspace(0, 2 * np.pi, 48, endpoint=False)  # outlines of round things: 48 points
_CIRCLE = np.stack([np.cos(_ROUND), np.sin(_ROUND)], axis=1)
_BEZIER = np.linspace(0, 1, 24)[:, None]  # 24 points along a strand, as weights of a cubic's 4 control points
_BERNSTEIN = np.concatenate([(1 - _BEZIER) ** 3, 3 * (1 - _BEZIER) ** 2 * _BEZIER, 3 * (1 - _BEZIER) * _BEZIER ** 2,
                             _BEZIER ** 3], axis=1)
_THIRDS = np.array([[1 / 3], [2 / 3]])
_QUARTERS = np.linspace(0, np.pi / 2, 6)[None, :] + np.arange(4)[:, None] * (np.pi / 2)  # 4 corners, 6 points each
_ARCS = np.stack([np.cos(_QUARTERS), np.sin(_QUARTERS)], axis=-1).reshape(-1, 2)
_CORNERS = np.repeat([(1, 1), (-1, 1), (-1, -1), (1, -1)], 6, axis=0)


@dataclass(frozen=True)
class Cutout:
    """An occluder: pixels h x w x 3 RGB uint8 and alpha h x w float32 0..1 (1 = occluder), same h, w."""

    pixels: NDArray[np.uint8] = field(repr=False)
    alpha: NDArray[np.float32] = field(repr=False)
    kind: str  # one of KINDS

    def __post_init__(self) -> None:
        _check_kind(self.kind)
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
    _check_kind(kind)
    if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"cutout needs an H x W x 3 image and an H x W mask, got {image.shape} and {mask.shape}")
    alpha = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if alpha.sum() < MIN_AREA:
        return None
    rows, cols = _box(alpha > 0)
    return Cutout(image[rows, cols].copy(), alpha[rows, cols].copy(), kind)


def make_occluder(kind: str, size: int, rng: np.random.Generator, bank: OccluderBank | None = None,
                  palette: NDArray | None = None) -> Cutout | None:
    """One occluder of `kind` for an image (or a face) of side `size` px; None for a real kind whose pool is
    empty. `palette`: N x 3 uint8 sample pixels of the scene that textures may take colours from."""
    _check_kind(kind)
    if size < 8:
        raise ValueError(f"make_occluder needs a size of at least 8 px, got {size}")
    palette = None if palette is None or not len(palette) else np.asarray(palette, np.uint8).reshape(-1, 3)
    if kind in POOLS:
        pool = bank.pool(kind) if bank is not None else []
        return _real(pool[rng.integers(len(pool))], size, rng) if pool else None
    return _DRAWN[kind](size, rng, palette)


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
    placed = _place(occluder, image.shape[:2], centre, scale, angle, with_pixels=True)
    if placed is not None:
        (rows, cols), a, pixels = placed
        region = out[rows, cols].astype(np.float32)
        region += cv2.cvtColor(a, cv2.COLOR_GRAY2RGB) * (pixels.astype(np.float32) - region)  # numpy's h x w x 1
        out[rows, cols] = np.rint(region).astype(np.uint8)
        alpha[rows, cols] = a
    return out, alpha


def occlude(image: Frame, label: Mask, rng: np.random.Generator, bank: OccluderBank | None = None, *,
            clean: float = 0.2, most: int = 3, shadow: float = SHADOW) -> tuple[Frame, Mask, Mask]:
    """A training sample from a face crop and its face mask `label` (H x W float 0..1): with probability
    `clean` unchanged, else 1..`most` occluders of random kinds over the face, covering COVER of it (label-
    weighted), some casting a shadow (probability `shadow` each; shadows darken, they are not occluders).

    Returns (image, label * (1 - alpha), alpha of all occluders). A label too small or thin to be covered
    within COVER (after ATTEMPTS draws) gives the clean sample.
    """
    if label.shape != image.shape[:2]:
        raise ValueError(f"occlude needs a label of the image's size {image.shape[:2]}, got {label.shape}")
    if most < 1:
        raise ValueError(f"occlude needs most >= 1 occluders, got {most}")
    label = np.asarray(label, np.float32)
    face = float(label.sum())
    if rng.random() < clean or face < MIN_AREA:
        return image.copy(), label.copy(), np.zeros(label.shape, np.float32)
    draw = _Draw(image, label, face, rng, bank, shadow)
    for _ in range(ATTEMPTS):
        out, alpha = draw.sample(int(rng.integers(1, most + 1)))
        if COVER[0] <= float((label * alpha).sum()) / face <= COVER[1]:
            return out, label * (1.0 - alpha), alpha
    return image.copy(), label.copy(), np.zeros(label.shape, np.float32)


# --- placing -------------------------------------------------------------------------------------------------


def _place(occluder: Cutout, shape_hw: tuple[int, ...], centre: tuple[float, float], scale: float, angle: float,
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


class _Draw:
    """One `occlude` call: what its attempts share (the kinds on offer, the palette, where the face is), and
    the drawing of one attempt. `face` is the label's sum."""

    def __init__(self, image: Frame, label: Mask, face: float, rng: np.random.Generator, bank: OccluderBank | None,
                 shadow: float):
        self.image, self.label, self.face, self.rng, self.bank, self.shadow = image, label, face, rng, bank, shadow
        self.size = max(image.shape[:2])
        self.kinds = [k for k in KINDS if k not in POOLS or (bank is not None and bank.pool(k))]
        self.cumulative = np.cumsum([KIND_WEIGHTS[k] for k in self.kinds])
        self.palette = _palette(image, label, rng)
        moments = cv2.moments(label)
        self.centroid = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
        rows, cols = _box(label > 0)
        self.low = np.array([cols.start, rows.start], np.float64)
        self.high = np.array([cols.stop - 1, rows.stop - 1], np.float64)

    def sample(self, count: int) -> tuple[Frame, Mask]:
        """The image with `count` occluders pasted, sharing a random goal; the union of their alphas."""
        out, alpha = self.image, np.zeros(self.label.shape, np.float32)
        for goal in self.rng.dirichlet(np.ones(count)) * self.rng.uniform(*GOAL):
            kind = self.kinds[_pick(self.rng, self.cumulative)]
            occluder = make_occluder(kind, self.size, self.rng, self.bank, self.palette)
            centre = self._centre(kind)
            before, (out, a) = out, paste(out, occluder, centre, self._scale(occluder, centre, goal))
            if self.rng.random() < self.shadow:
                out = _shadow(before, out, a, self.rng, self.size)
            alpha = 1.0 - (1.0 - alpha) * (1.0 - a)
        return out, alpha

    def _centre(self, kind: str) -> tuple[float, float]:
        """On or near a face pixel; or, now and then, on the way in from the border towards the face."""
        rng = self.rng
        if kind == "glasses":
            return tuple(self.centroid + rng.normal(0, JITTER / 2 * self.size, 2))
        if rng.random() >= BORDER_ENTRY:
            return tuple(self._face_pixel() + rng.normal(0, JITTER * self.size, 2))
        height, width = self.label.shape
        x, y = rng.uniform(self.low, self.high)
        edge = np.array([(x, height - 1), (x, 0), (0, y), (width - 1, y)][_pick(rng, _SIDES)], np.float64)
        return tuple(edge + rng.uniform(0.1, 0.45) * (self.centroid - edge))

    def _face_pixel(self) -> NDArray[np.float64]:
        """(x, y) of a random pixel of the face (label >= 0.5), drawn inside the label's box; its centroid when
        FACE_TRIES draws miss (a thin or faint label)."""
        points = self.rng.uniform(self.low, self.high + 1, (FACE_TRIES, 2))
        hits = self.label[points[:, 1].astype(int), points[:, 0].astype(int)] >= 0.5
        return points[hits.argmax()] - 0.5 if hits.any() else self.centroid

    def _scale(self, occluder: Cutout, centre: tuple[float, float], goal: float) -> float:
        """The paste scale that makes the occluder cover about `goal` of the face from `centre`."""
        if occluder.kind in FIXED_SCALE:
            return float(self.rng.uniform(0.85, 1.15))
        scale = math.sqrt(goal * self.face / max(float(occluder.alpha.sum()), 1.0))
        for _ in range(FIT_STEPS):
            scale = min(max(scale, FIT_SCALE[0]), FIT_SCALE[1])
            covered = self._covered(occluder, centre, scale)
            if 0.7 * goal <= covered <= 1.4 * goal:
                break
            scale *= math.sqrt(goal / max(covered, 0.1 * goal))
        return min(max(scale, FIT_SCALE[0]), FIT_SCALE[1])

    def _covered(self, occluder: Cutout, centre: tuple[float, float], scale: float) -> float:
        placed = _place(occluder, self.label.shape, centre, scale, 0.0, with_pixels=False)
        if placed is None:
            return 0.0
        region, a, _ = placed
        return float((self.label[region] * a).sum()) / self.face


def _shadow(before: Frame, after: Frame, alpha: Mask, rng: np.random.Generator, size: int) -> Frame:
    """`after` (= before * (1 - alpha) + occluder * alpha) with a soft offset shadow of the occluder darkening
    what still shows behind it."""
    shift = np.float64([[1, 0, 0], [0, 1, 0]])
    shift[:, 2] = rng.normal(0, 0.03 * size, 2)
    sigma, strength = rng.uniform(0.01, 0.04) * size, rng.uniform(0.15, 0.5)
    rows, cols = _box(alpha > 0)  # the shadow reaches only so far from the occluder: work there
    reach = math.ceil(np.abs(shift[:, 2]).max() + 3 * sigma)
    rows = slice(max(0, (rows.start or 0) - reach), (rows.stop or alpha.shape[0]) + reach)
    cols = slice(max(0, (cols.start or 0) - reach), (cols.stop or alpha.shape[1]) + reach)
    a = alpha[rows, cols]
    shade = cv2.GaussianBlur(cv2.warpAffine(a, shift, a.shape[::-1]), (0, 0), sigma)
    dark = cv2.cvtColor(shade * (strength * (1.0 - a)), cv2.COLOR_GRAY2RGB) * before[rows, cols].astype(np.float32)
    out = after.copy()
    out[rows, cols] = np.rint(np.clip(after[rows, cols] - dark, 0, 255)).astype(np.uint8)
    return out


def _palette(image: Frame, label: Mask, rng: np.random.Generator) -> NDArray[np.uint8]:
    """N x 3 colours: pixels from outside the face (the scene) and some from anywhere."""
    flat = image.reshape(-1, 3)
    picks = rng.integers(0, len(flat), 3 * PALETTE[0] + PALETTE[1])
    outside = picks[PALETTE[1]:][label.ravel()[picks[PALETTE[1]:]] < 0.5][:PALETTE[0]]  # fewer if the face fills it
    return flat[np.concatenate([picks[:PALETTE[1]], outside])]


# --- drawn kinds ---------------------------------------------------------------------------------------------


def _shape(size: int, rng: np.random.Generator, palette: NDArray | None) -> Cutout:
    """A polygon, an ellipse or a smooth blob, textured."""
    radius = size * rng.uniform(0.08, 0.3)
    outline = rng.integers(3)
    if outline == 0:  # 3-8 corners, spread around so the polygon is never a sliver
        corners = int(rng.integers(3, 9))
        angles = (np.arange(corners) + rng.uniform(-0.35, 0.35, corners)) * (2 * np.pi / corners)
        radii = rng.uniform(0.45, 1.0, corners)
    else:
        angles = _ROUND
        harmonics = np.arange(2, 6)[:, None]  # a blob: the radius wobbles with a few low harmonics
        wobble = rng.uniform(0, 0.3, (4, 1)) / harmonics * np.cos(harmonics * angles + rng.uniform(0, 7, (4, 1)))
        radii = 1 + wobble.sum(axis=0) if outline == 2 else np.ones_like(angles)
    points = np.stack([np.cos(angles), np.sin(angles) * rng.uniform(0.4, 1.0)], axis=1) * radii[:, None] * radius
    (points,), shape = _layout([_rotate(points, rng.uniform(0, 360))], margin=1)
    alpha = np.zeros(shape, np.uint8)
    cv2.fillPoly(alpha, [_fixed(points)], 255, cv2.LINE_AA, shift=SHIFT)
    return _finish(_texture(shape, rng, palette), alpha, "shape")


def _strands(size: int, rng: np.random.Generator, palette: NDArray | None) -> Cutout:
    """3-12 thin curved hair strands falling roughly together, 1-4 px wide at size 128, one hair tone."""
    count = int(rng.integers(3, 13))
    length, spread = size * rng.uniform(0.3, 0.9), size * rng.uniform(0.03, 0.25)
    widths = np.maximum(1, np.rint(rng.uniform(1, 4, count) * size / 128)).astype(int)
    angle = rng.uniform(0, 360)
    curves, shape = _layout(list(_rotate(_bundle(count, length, spread, rng), angle)), widths.max() + 1)
    tone = _colour(rng, palette) if rng.random() < 0.3 else np.float32(HAIR[rng.integers(len(HAIR))])
    pixels = np.empty((*shape, 3), np.uint8)
    pixels[:] = tone
    alpha = np.zeros(shape, np.uint8)
    for curve, width in zip(curves, widths, strict=True):
        colour = np.clip(tone * rng.uniform(0.75, 1.3), 0, 255).tolist()
        # colour under the whole anti-aliased edge, so edge pixels blend the strand's own colour
        cv2.polylines(pixels, [_fixed(curve)], False, colour, int(width) + 2, cv2.LINE_8, shift=SHIFT)
        cv2.polylines(alpha, [_fixed(curve)], False, 255, int(width), cv2.LINE_AA, shift=SHIFT)
    return _finish(pixels, alpha, "strands")


def _bundle(count: int, length: float, spread: float, rng: np.random.Generator) -> NDArray:
    """count x 24 x 2: cubic Beziers falling about `length` from near the bundle's top (spread sideways by
    `spread`), each bending a little."""
    start = np.stack([rng.normal(0, spread, count), rng.normal(0, 0.05 * length, count)], axis=1)
    drop = np.stack([rng.normal(0, 0.12 * length, count), length * rng.uniform(0.6, 1.0, count)], axis=1)
    bends = start[:, None] + drop[:, None] * _THIRDS + rng.normal(0, 0.08 * length, (count, 2, 2))
    controls = np.concatenate([start[:, None], bends, (start + drop)[:, None]], axis=1)  # count x 4 x 2
    return _BERNSTEIN @ controls


def _bar(size: int, rng: np.random.Generator, palette: NDArray | None) -> Cutout:
    """A long rounded rectangle (a pen, a finger, a microphone with its head now and then), shaded as a rod."""
    length, width = size * rng.uniform(0.45, 1.2), size * rng.uniform(0.05, 0.2)
    parts = [_rounded_rect(length, width, width / 2 * rng.uniform(0.3, 1.0))]
    if rng.random() < 0.3:
        parts.append(_ellipse(width * rng.uniform(0.8, 1.5), width * rng.uniform(0.8, 1.5)) + (length / 2, 0))
    angle = rng.uniform(0, 360)
    (body, *head), shape = _layout([_rotate(p, angle) for p in parts], margin=1)
    alpha = np.zeros(shape, np.uint8)
    for part in (body, *head):  # one at a time: fillPoly leaves holes where polygons of one call overlap
        cv2.fillPoly(alpha, [_fixed(part)], 255, cv2.LINE_AA, shift=SHIFT)
    pixels = _shade(_texture(shape, rng, palette), body.mean(axis=0), angle, width / 2, rng)
    if head:
        cv2.fillPoly(pixels, [_fixed(head[0])], np.clip(_colour(rng, palette) * 0.5, 0, 255).tolist(), cv2.LINE_8,
                     shift=SHIFT)
    return _finish(pixels, alpha, "bar")


def _glasses(size: int, rng: np.random.Generator, palette: NDArray | None) -> Cutout:
    """Two thin lens rims (ellipses or rounded rectangles), a bridge and stubs of the temples; clear lenses."""
    width = size * rng.uniform(0.5, 0.8)
    lens_w = width * rng.uniform(0.36, 0.46)
    lens_h = lens_w * rng.uniform(0.5, 0.9)
    thick = max(1, round(size / 128 * rng.uniform(1.5, 5)))
    if rng.random() < 0.5:
        rim = _ellipse(lens_w / 2, lens_h / 2)
    else:
        rim = _rounded_rect(lens_w, lens_h, lens_h * rng.uniform(0.15, 0.5))
    middle, inner = (width - lens_w) / 2, width / 2 - lens_w
    bridge = np.array([(-inner, -0.15 * lens_h), (0, -rng.uniform(0.2, 0.35) * lens_h), (inner, -0.15 * lens_h)])
    temple = np.array([(width / 2, -0.2 * lens_h), (width / 2 + width * rng.uniform(0.02, 0.12), -0.25 * lens_h)])
    angle = rng.uniform(-15, 15)
    parts = [rim - (middle, 0), rim + (middle, 0), bridge, temple, temple * (-1, 1)]
    (left, right, *open_lines), shape = _layout([_rotate(p, angle) for p in parts], margin=thick + 1)
    alpha = np.zeros(shape, np.uint8)
    cv2.polylines(alpha, [_fixed(left), _fixed(right)], True, 255, thick, cv2.LINE_AA, shift=SHIFT)
    cv2.polylines(alpha, [_fixed(p) for p in open_lines], False, 255, thick, cv2.LINE_AA, shift=SHIFT)
    colour = _colour(rng, palette) if rng.random() < 0.2 else np.float32(FRAMES[rng.integers(len(FRAMES))])
    return _finish(_grainy(np.zeros(shape, np.uint8), np.stack([np.zeros(3), colour], axis=1), rng), alpha, "glasses")


def _cup(size: int, rng: np.random.Generator, palette: NDArray | None) -> Cutout:
    """A mug: a body wider at the top, a handle ring, now and then the drink seen over the rim; shaded."""
    height = size * rng.uniform(0.3, 0.6)
    width = height * rng.uniform(0.55, 0.95)
    taper = rng.uniform(0, 0.25)
    body = _rounded_rect(width, height, width * rng.uniform(0.05, 0.2))
    body[:, 0] *= 1 + taper * (0.5 - body[:, 1] / height)
    side = 1 if rng.random() < 0.5 else -1
    handle = _ellipse(width * rng.uniform(0.18, 0.28), height * rng.uniform(0.2, 0.3))
    handle += (side * width / 2, -height * rng.uniform(0, 0.15))
    top = _ellipse(width * (1 + taper) / 2, height * rng.uniform(0.04, 0.08)) + (0, -height / 2)
    thick = max(1, round(width * rng.uniform(0.06, 0.12)))
    angle = rng.uniform(-20, 20)
    (body, handle, top), shape = _layout([_rotate(p, angle) for p in (body, handle, top)], margin=thick + 1)
    alpha = np.zeros(shape, np.uint8)
    open_top = rng.random() < 0.5
    for part in (body, top) if open_top else (body,):  # one at a time, as in _bar
        cv2.fillPoly(alpha, [_fixed(part)], 255, cv2.LINE_AA, shift=SHIFT)
    cv2.polylines(alpha, [_fixed(handle)], True, 255, thick, cv2.LINE_AA, shift=SHIFT)
    pixels = _shade(_texture(shape, rng, palette), body.mean(axis=0), angle + 90, width / 2, rng)
    if open_top:
        drink = top.mean(axis=0) + (top - top.mean(axis=0)) * 0.85
        cv2.fillPoly(pixels, [_fixed(drink)], rng.uniform(20, 120, 3).tolist(), cv2.LINE_8, shift=SHIFT)
    return _finish(pixels, alpha, "cup")


_DRAWN: dict[str, Callable[[int, np.random.Generator, NDArray | None], Cutout]] = {
    "shape": _shape, "strands": _strands, "bar": _bar, "glasses": _glasses, "cup": _cup}


# --- geometry and textures -----------------------------------------------------------------------------------


def _ellipse(rx: float, ry: float) -> NDArray:
    return _CIRCLE * (rx, ry)


def _rounded_rect(width: float, height: float, radius: float) -> NDArray:
    """The outline of a width x height rectangle centred on 0 whose corners are arcs of `radius`."""
    r = min(radius, width / 2, height / 2)
    return _CORNERS * (width / 2 - r, height / 2 - r) + _ARCS * r


def _pick(rng: np.random.Generator, cumulative: NDArray) -> int:
    """An index drawn with weights given as their running sum (rng.choice with p=, ten times cheaper)."""
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(cumulative) - 1)


def _rotate(points: NDArray, degrees: float) -> NDArray:
    """Points turned about 0, counter-clockwise on screen (y down), as cv2.getRotationMatrix2D."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return points @ np.array([[c, -s], [s, c]])


def _layout(parts: list[NDArray], margin: float) -> tuple[list[NDArray], tuple[int, int]]:
    """Point sets around 0 moved onto the smallest canvas (h, w) that holds them with `margin` px to spare."""
    stacked = np.concatenate(parts)
    low = stacked.min(axis=0) - margin
    w, h = np.ceil(stacked.max(axis=0) + margin - low).astype(int) + 1
    return [p - low for p in parts], (int(h), int(w))


def _fixed(points: NDArray) -> NDArray[np.int32]:
    """Pixel coordinates as cv2's fixed-point drawing coordinates (shift=SHIFT)."""
    return np.rint(points * (1 << SHIFT)).astype(np.int32)


def _finish(pixels: NDArray[np.uint8], alpha: NDArray[np.uint8], kind: str) -> Cutout:
    return _trimmed(Cutout(pixels, alpha.astype(np.float32) / 255, kind))


def _colour(rng: np.random.Generator, palette: NDArray | None) -> NDArray[np.float32]:
    """RGB float32: a colour of the scene (palette) or a random one."""
    if palette is not None and rng.random() < PALETTE_USE:
        return palette[rng.integers(len(palette))].astype(np.float32)
    return rng.integers(0, 256, 3).astype(np.float32)


def _texture(shape: tuple[int, int], rng: np.random.Generator, palette: NDArray | None) -> Frame:
    """h x w x 3: a flat colour, a gradient, smooth noise or stripes between two colours, or a mosaic of the
    palette's colours; then grain."""
    h, w = shape
    style = int(rng.integers(5))
    if style == 4 and palette is not None:
        grid = palette[rng.integers(len(palette), size=tuple(rng.integers(2, 7, 2)))]
        flags = cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_NEAREST
        return _grainy(cv2.resize(grid, (w, h), interpolation=flags), np.eye(3, 4), rng)
    a, b = _colour(rng, palette), _colour(rng, palette)
    along = _ramp(shape, rng.uniform(0, 2 * np.pi))
    if style in (0, 4):
        mix = np.zeros(shape, np.float32)
    elif style == 1:
        mix = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif style == 2:
        mix = np.clip(cv2.resize(rng.random(tuple(rng.integers(2, 9, 2)), np.float32), (w, h),
                                 interpolation=cv2.INTER_CUBIC), 0, 1)
    else:
        period = rng.uniform(3, max(4.0, 0.5 * max(h, w)))
        wave = np.sin(along * (2 * np.pi / period) + rng.uniform(0, 2 * np.pi))
        mix = np.clip(wave * rng.uniform(0.5, 3) + 0.5, 0, 1)  # from soft waves to hard-edged bands
    return _grainy((mix * 255).astype(np.uint8), np.stack([(b - a) / 255, a], axis=1), rng)


def _ramp(shape: tuple[int, int], direction: float) -> NDArray[np.float32]:
    """h x w: each pixel's coordinate along `direction` (radians)."""
    h, w = shape
    x = np.arange(w, dtype=np.float32) * np.float32(math.cos(direction))
    y = np.arange(h, dtype=np.float32) * np.float32(math.sin(direction))
    return x[None, :] + y[:, None]


def _grainy(planes: NDArray[np.uint8], matrix: NDArray, rng: np.random.Generator) -> Frame:
    """RGB uint8 (saturated): `matrix` (3 x k+1: weights of the k planes, then an offset) applied to each pixel
    of `planes` (h x w x k uint8), plus luminance grain of up to GRAIN levels either way.

    One cv2.transform: numpy's broadcasting over a last axis of 3 is ten times slower."""
    h, w = planes.shape[:2]
    grain = np.frombuffer(rng.bytes(h * w), np.uint8).reshape(h, w)
    amount = rng.uniform(0, 2 * GRAIN) / 255
    weights = np.concatenate([matrix[:, :-1], np.full((3, 1), amount), matrix[:, -1:] - amount * 127.5], axis=1)
    return cv2.transform(cv2.merge([planes, grain]), weights.astype(np.float32))


def _shade(pixels: Frame, centre: NDArray, axis: float, half: float, rng: np.random.Generator) -> Frame:
    """Round-object lighting across an object whose axis is at `axis` degrees and `half` px wide either side of
    `centre`: darker towards its sides, brightest a little off the middle."""
    h, w = pixels.shape[:2]
    nx, ny = _rotate(np.array([[0.0, 1.0]]), axis)[0]
    across = (np.arange(w) - centre[0])[None, :] * nx + (np.arange(h) - centre[1])[:, None] * ny
    across = across / half - rng.uniform(-0.4, 0.4)
    dark = rng.uniform(0.45, 0.8)
    light = dark + (1 - dark) * np.sqrt(np.clip(1 - across ** 2, 0, 1))
    return cv2.multiply(pixels, cv2.cvtColor((light * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB), scale=1 / 255)


# --- real cut-outs -------------------------------------------------------------------------------------------


def _real(source: Cutout, size: int, rng: np.random.Generator) -> Cutout:
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
    placed = _place(source, (out_h, out_w), ((out_w - 1) / 2, (out_h - 1) / 2), scale, angle, with_pixels=True)
    (rows, cols), alpha, pixels = placed
    canvas.alpha[rows, cols], canvas.pixels[rows, cols] = alpha, pixels
    gain = rng.uniform(1 - REAL_GAIN, 1 + REAL_GAIN) * (1 + rng.normal(0, 0.03, 3))
    canvas.pixels[:] = cv2.transform(canvas.pixels, np.diag(gain).astype(np.float32))
    return _trimmed(canvas)


def _trimmed(occluder: Cutout) -> Cutout:
    rows, cols = _box(occluder.alpha > 0)
    return Cutout(occluder.pixels[rows, cols].copy(), occluder.alpha[rows, cols].copy(), occluder.kind)


def _box(present: NDArray[np.bool_]) -> tuple[slice, slice]:
    """Slices around the True pixels (the whole array when there are none)."""
    rows, cols = np.flatnonzero(present.any(axis=1)), np.flatnonzero(present.any(axis=0))
    if not len(rows):
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown occluder kind {kind!r}; expected one of {', '.join(KINDS)}")

