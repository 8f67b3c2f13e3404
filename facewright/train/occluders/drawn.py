"""The drawn (synthetic) occluder kinds: "shape", "strands", "bar", "glasses" and "cup", each a function
(size, rng, palette) -> Cutout in the `DRAWN` registry, with the outlines, textures and shading they share.

Outlines are point sets around 0 drawn with cv2 in fixed-point coordinates (SHIFT fractional bits), alpha
anti-aliased (cv2.LINE_AA); textures take colours from the scene's `palette` (N x 3 uint8) now and then.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.media.image import Frame
from facewright.train.occluders.cutouts import Cutout, trimmed

PALETTE_USE = 0.5  # chance a texture colour comes from the palette rather than at random
SHIFT = 4  # fractional bits of cv2 drawing coordinates
GRAIN = 8  # levels of luminance noise on drawn textures, at most
HAIR = ((25, 20, 18), (55, 38, 26), (95, 62, 38), (140, 90, 50), (200, 165, 110), (160, 155, 150))
FRAMES = ((15, 15, 18), (45, 35, 30), (90, 55, 30), (180, 150, 80), (170, 170, 175))  # black, tortoise, gold...
_ROUND = np.linspace(0, 2 * np.pi, 48, endpoint=False)  # outlines of round things: 48 points
_CIRCLE = np.stack([np.cos(_ROUND), np.sin(_ROUND)], axis=1)
_BEZIER = np.linspace(0, 1, 24)[:, None]  # 24 points along a strand, as weights of a cubic's 4 control points
_BERNSTEIN = np.concatenate([(1 - _BEZIER) ** 3, 3 * (1 - _BEZIER) ** 2 * _BEZIER, 3 * (1 - _BEZIER) * _BEZIER ** 2,
                             _BEZIER ** 3], axis=1)
_THIRDS = np.array([[1 / 3], [2 / 3]])
_QUARTERS = np.linspace(0, np.pi / 2, 6)[None, :] + np.arange(4)[:, None] * (np.pi / 2)  # 4 corners, 6 points each
_ARCS = np.stack([np.cos(_QUARTERS), np.sin(_QUARTERS)], axis=-1).reshape(-1, 2)
_CORNERS = np.repeat([(1, 1), (-1, 1), (-1, -1), (1, -1)], 6, axis=0)


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


DRAWN: dict[str, Callable[[int, np.random.Generator, NDArray | None], Cutout]] = {
    "shape": _shape, "strands": _strands, "bar": _bar, "glasses": _glasses, "cup": _cup}


# --- geometry and textures -----------------------------------------------------------------------------------


def _ellipse(rx: float, ry: float) -> NDArray:
    return _CIRCLE * (rx, ry)


def _rounded_rect(width: float, height: float, radius: float) -> NDArray:
    """The outline of a width x height rectangle centred on 0 whose corners are arcs of `radius`."""
    r = min(radius, width / 2, height / 2)
    return _CORNERS * (width / 2 - r, height / 2 - r) + _ARCS * r


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
    return trimmed(Cutout(pixels, alpha.astype(np.float32) / 255, kind))


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
