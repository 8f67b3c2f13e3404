"""Masks: hulls of constructed landmark sets with known areas, parts inside the face, morphology."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facewright.errors import OptionError
from facewright.faces.align import TEMPLATE
from facewright.faces.mask import blend_mask, component_masks, erode, face_size, feather, hull_mask


def square_face(x0: float = 40, y0: float = 40, side: float = 60) -> np.ndarray:
    """68 points whose jaw (down the left side, along the bottom, up the right) and brows (along the top)
    trace a square; everything else sits at its centre. Chin (8) is mid-bottom, so brow-chin = side."""
    points = np.full((68, 2), [x0 + side / 2, y0 + side / 2], np.float32)
    left = np.stack([np.full(6, x0), np.linspace(y0, y0 + side, 6)], axis=1)
    bottom = np.stack([np.linspace(x0, x0 + side, 7)[1:-1], np.full(5, y0 + side)], axis=1)
    points[:17] = np.concatenate([left, bottom, left[::-1] + [side, 0]])
    points[17:27] = np.stack([np.linspace(x0, x0 + side, 10), np.full(10, y0)], axis=1)
    return points


def bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), xs.max(), ys.min(), ys.max()


def test_face_hull_of_a_square_is_the_square():
    mask = hull_mask((128, 160), square_face())
    assert mask.shape == (128, 160) and mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    assert bounds(mask) == (40, 100, 40, 100)
    assert mask.sum() == 61 * 61  # pixel centres on the edge count as inside
    assert face_size(square_face()) == pytest.approx(60)


def test_whole_face_raises_the_brows_by_half_the_brow_chin_height():
    mask = hull_mask((128, 160, 3), square_face(), "whole_face")  # an image's shape works too
    assert bounds(mask) == (40, 100, 10, 100)
    assert mask.sum() == 61 * 91


def test_head_is_taller_and_wider_than_the_whole_face():
    head, whole = hull_mask((128, 160), square_face(), "head"), hull_mask((128, 160), square_face(), "whole_face")
    x0, x1, y0, y1 = bounds(head)
    assert y0 == 0 and y1 == 100  # lifted 0.9 x 60 = 54 px: past the top edge
    assert x0 == pytest.approx(70 - 1.25 * 30, abs=1) and x1 == pytest.approx(70 + 1.25 * 30, abs=1)
    assert np.all(head >= whole)


def test_hull_follows_a_rotated_face():
    centre = np.array([70.0, 70.0])
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90 degrees: the chin points left, the forehead right
    points = (square_face() - centre) @ turn.T + centre
    assert bounds(hull_mask((160, 160), points, "whole_face")) == (40, 130, 40, 100)


@pytest.fixture
def mean_face() -> np.ndarray:
    """The alignment template (a mean of real dlib landmarks) as a 200 px face in a 400 x 400 image."""
    return TEMPLATE * 200 + [80, 100]


def test_larger_face_types_cover_more(mean_face):
    areas = [hull_mask((400, 400), mean_face, kind).sum() for kind in ("face", "whole_face", "head")]
    assert areas[0] < areas[1] < areas[2]


def test_eyes_and_mouth_lie_inside_the_face(mean_face):
    face = hull_mask((400, 400), mean_face)
    parts = component_masks((400, 400), mean_face)
    assert {"eyes", "mouth"} <= set(parts)
    for name, part in parts.items():
        assert part.shape == (400, 400) and part.dtype == np.float32
        assert part.sum() > 100 and (part * (1 - face)).sum() == 0, name
    # The mouth is the outer lip polygon (area by the shoelace formula), up to a half-pixel rim.
    x, y = mean_face[48:60].T
    lips = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    rim = np.linalg.norm(np.diff(mean_face[48:60], axis=0, append=mean_face[48:49]), axis=1).sum() / 2
    assert abs(parts["mouth"].sum() - lips) < rim + 4
    # Eyes get a margin beyond the eye contours for lids and lashes.
    eyes = [mean_face[36:42], mean_face[42:48]]
    contours = sum(0.5 * abs(np.dot(e[:, 0], np.roll(e[:, 1], 1)) - np.dot(e[:, 1], np.roll(e[:, 0], 1)))
                   for e in eyes)
    assert parts["eyes"].sum() > 2 * contours
    assert parts["eyes"][:, 200].sum() == 0  # two separate eyes, nothing on the nose bridge


def block(size: int = 64, lo: int = 20, hi: int = 41) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[lo:hi, lo:hi] = 1.0
    return mask


def minkowski(mask: np.ndarray, radius: float) -> np.ndarray:
    """Brute force: every pixel within `radius` of a mask pixel."""
    ys, xs = np.nonzero(mask)
    y, x = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    distance = np.sqrt((x[..., None] - xs) ** 2 + (y[..., None] - ys) ** 2).min(axis=-1)
    return (distance <= radius).astype(np.float32)


def test_erode_shrinks_a_square_by_the_radius():
    np.testing.assert_array_equal(erode(block(), 3), block(lo=23, hi=38))
    np.testing.assert_array_equal(erode(block(), 0.5), block())


@pytest.mark.parametrize("radius", [3, 2.5, 4.2])
def test_negative_erode_grows_by_a_disk(radius):
    grown = erode(block(), -radius)
    np.testing.assert_array_equal(grown, minkowski(block(), radius))
    assert grown.sum() > block().sum()


def disk_filter(mask: np.ndarray, radius: float) -> np.ndarray:
    """The definition `erode` keeps: a min (max for a negative radius) over the disk x^2 + y^2 <= r^2."""
    reach = math.floor(abs(radius))
    y, x = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    disk = (x * x + y * y <= radius * radius).astype(np.uint8)
    return cv2.erode(mask, disk) if radius > 0 else cv2.dilate(mask, disk)


@pytest.mark.parametrize("radius", [3.5, 4, 7.3, -4, -9.5, 25, -40, 60.01])
def test_a_hard_mask_erodes_as_the_disk_filter_does(radius):
    """A 0/1 mask takes a distance transform: the same pixels as the disk filter, edges and border included."""
    rng = np.random.default_rng(int(abs(radius) * 10))
    mask = np.zeros((150, 170), np.float32)
    for _ in range(4):
        centre, axes = rng.integers(0, [170, 150]), rng.integers(2, 50, 2)
        cv2.ellipse(mask, tuple(map(int, centre)), tuple(map(int, axes)), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask[rng.random(mask.shape) < 0.01] = 1  # specks
    mask[rng.random(mask.shape) < 0.01] = 0  # holes
    np.testing.assert_array_equal(erode(mask, radius), disk_filter(mask, radius))
    soft = mask * 0.5
    np.testing.assert_array_equal(erode(soft, radius), disk_filter(soft, radius))  # a soft mask: the filter itself


def test_the_image_border_does_not_erode():
    np.testing.assert_array_equal(erode(np.ones((20, 30), np.float32), 4), np.ones((20, 30), np.float32))


def test_feather_is_a_smooth_ramp_in_0_1():
    soft = feather(block(96, 20, 76), 6)  # sigma 3 px
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    steepest = 1 / (3 * math.sqrt(2 * math.pi))  # the slope of a Gaussian-blurred step at its centre
    assert np.abs(np.diff(soft, axis=1)).max() <= steepest + 0.01
    # Across the left edge (at x = 19.5), away from the corners: the error function.
    x = np.arange(8, 32)
    expected = [0.5 * (1 + math.erf((xi - 19.5) / (3 * math.sqrt(2)))) for xi in x]
    np.testing.assert_allclose(soft[48, 8:32], expected, atol=0.02)
    assert soft.sum() == pytest.approx(block(96, 20, 76).sum(), rel=1e-3)  # blurring moves mass, keeps it
    np.testing.assert_array_equal(feather(block(), 0), block())


def test_blend_mask_keeps_its_soft_edge_inside_the_mask():
    square = block(96, 20, 76)
    soft = blend_mask(square, erode_px=8, blur_px=4)  # sigma 2: the kernel reaches 6 px < 8
    np.testing.assert_array_equal(soft, feather(erode(square, 8), 4))
    assert soft[square == 0].max() == 0 and soft[48, 48] == 1
    assert 0 < soft[48, 28] < 1


def test_bad_input_raises():
    with pytest.raises(OptionError):
        hull_mask((64, 64), square_face(), "eyes")
    with pytest.raises(ValueError):
        hull_mask((64, 64), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        erode(np.zeros((4, 4, 3), np.float32), 1)
