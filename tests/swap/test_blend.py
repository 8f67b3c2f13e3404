"""Blending: crops warped back to sub-pixel accuracy, border-safe, masks, alpha and Poisson blends, sharpening."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facewright.config import BLEND_MODES
from facewright.config import MASK_MODES as CONFIG_MASK_MODES
from facewright.errors import OptionError
from facewright.faces.align import alignment_matrix, template_points
from facewright.swap.blend import (
    MASK_MODES,
    blend,
    blend_modes,
    combine_masks,
    feather_blend,
    paste_face,
    poisson_blend,
    refine_mask,
    scale_crop,
    sharpen,
    warp_to_frame,
)

H, W, S = 360, 640, 256


def similarity(scale: float, degrees: float, frame_point, crop_point) -> np.ndarray:
    """The 2 x 3 frame -> crop similarity: rotate by `degrees`, scale, and put `frame_point` on `crop_point`."""
    a = math.radians(degrees)
    linear = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([linear, (np.asarray(crop_point) - linear @ np.asarray(frame_point))[:, None]])


def smooth_image(seed: int = 0, shape=(H, W)) -> np.ndarray:
    """H x W x 3 float32 0..1: blurred noise, smooth enough for interpolation to be near exact."""
    noise = np.random.default_rng(seed).random((*shape, 3)).astype(np.float32)
    image = cv2.GaussianBlur(noise, (0, 0), 6)
    return (image - image.min()) / (image.max() - image.min())


def blob(cx: float, cy: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    spot = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
    return np.repeat(spot[..., None], 3, axis=2)


def centroid(image: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    weight = np.where(image[..., 0] > 0.05, image[..., 0], 0)
    y, x = np.mgrid[y0:y0 + image.shape[0], x0:x0 + image.shape[1]]
    return np.array([(weight * x).sum(), (weight * y).sum()]) / weight.sum()


def cut(frame: np.ndarray, matrix: np.ndarray, size: int = S) -> np.ndarray:
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


# Frame -> crop scales: 1.3 enlarges the face into the crop; 4 and 6 are small faces in a big crop, where
# the crop is area-averaged before it goes back (a half-pixel slip in that path moves the dot ~0.2 px).
@pytest.mark.parametrize("scale", [1.3, 0.7, 4.0, 6.0])
def test_a_dot_cut_out_and_warped_back_lands_where_it_was(scale):
    spot = (305.3, 177.7)
    matrix = similarity(scale, 20, (310, 180), ((S - 1) / 2, (S - 1) / 2))
    warped = warp_to_frame(cut(blob(*spot, 3.0), matrix), np.ones((S, S), np.float32), matrix, (H, W))
    x0, y0, _, _ = warped.box
    assert np.abs(centroid(warped.face, x0, y0) - spot).max() < 0.05


def test_round_trip_of_a_real_alignment_matrix_reconstructs_the_frame():
    points = template_points(200) + (215, 75)  # a 200 px face, then turned about its middle
    turn = cv2.getRotationMatrix2D((315, 175), 15, 1.0)
    points = points @ turn[:, :2].T + turn[:, 2]
    matrix = alignment_matrix(points, S, "whole_face", margin=0.1)
    frame = smooth_image()
    warped = warp_to_frame(cut(frame, matrix), np.ones((S, S), np.float32), matrix, (H, W))
    inside = cv2.erode(warped.mask, np.ones((5, 5), np.uint8)) > 0.999  # away from the crop's edge
    error = np.abs(warped.face - frame[warped.region])[inside]
    assert inside.sum() > 150**2 and error.mean() < 0.003 and error.max() < 0.03


def test_a_fine_pattern_shrunk_onto_the_frame_averages_instead_of_aliasing():
    checker = np.indices((S, S)).sum(axis=0) % 2
    crop = np.repeat(checker[..., None], 3, axis=2).astype(np.float32)
    matrix = similarity(4.0, 10, (320, 180), ((S - 1) / 2, (S - 1) / 2))  # 256 px crop onto 64 frame px
    warped = warp_to_frame(crop, np.ones((S, S), np.float32), matrix, (H, W))
    inside = cv2.erode(warped.mask, np.ones((5, 5), np.uint8)) > 0.999
    assert abs(warped.face[inside].mean() - 0.5) < 0.02 and warped.face[inside].std() < 0.05


def test_a_face_across_the_frame_corner_is_clipped_and_the_rest_of_the_frame_kept():
    frame = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    matrix = similarity(1.0, 30, (10, 5), ((S - 1) / 2, (S - 1) / 2))  # crop centred near the top-left corner
    crop = np.full((S, S, 3), 0.5, np.float32)
    mask = np.zeros((S, S), np.float32)
    mask[20:-20, 20:-20] = 1
    warped = warp_to_frame(crop, mask, matrix, (H, W))
    x0, y0, x1, y1 = warped.box
    assert (x0, y0) == (0, 0) and 0 < x1 < W and 0 < y1 < H
    assert warped.face.shape == (y1 - y0, x1 - x0, 3) and warped.mask.shape == (y1 - y0, x1 - x0)
    for mode in blend_modes():
        out = paste_face(frame, warped, mode)
        assert out.shape == frame.shape and out.dtype == np.uint8
        untouched = np.ones((H, W), bool)
        untouched[warped.region] = warped.mask < 1 / 512
        assert np.array_equal(out[untouched], frame[untouched])
    alpha = paste_face(frame, warped, "alpha")
    assert np.abs(alpha[:20, :20].astype(int) - 128).max() <= 1  # the frame's corner now shows the face


def test_a_face_wholly_outside_the_frame_changes_nothing():
    frame = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    matrix = similarity(1.0, 0, (-400, -400), ((S - 1) / 2, (S - 1) / 2))
    warped = warp_to_frame(np.ones((S, S, 3), np.float32), np.ones((S, S), np.float32), matrix, (H, W))
    assert warped.empty and warped.box == (0, 0, 0, 0)
    out = paste_face(frame, warped)
    assert np.array_equal(out, frame) and out is not frame


def test_feather_blend_keeps_the_frame_where_the_mask_is_zero_and_takes_the_face_where_one():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    face = rng.random((40, 60, 3)).astype(np.float32)
    copy = frame.copy()
    assert np.array_equal(feather_blend(frame, face, np.zeros((40, 60), np.float32)), frame)
    assert np.array_equal(feather_blend(frame, face, np.ones((40, 60), np.float32)), np.rint(face * 255))
    half = feather_blend(frame, face, np.full((40, 60), 0.5, np.float32)).astype(float)
    assert np.abs(half - (frame + face * 255) / 2).max() <= 0.5 + 1e-3
    assert np.array_equal(frame, copy)


def test_poisson_blend_takes_the_face_s_detail_and_the_frame_s_light():
    frame = np.rint(smooth_image(4) * 255).astype(np.uint8)
    mask = np.zeros((H, W), np.float32)
    cv2.circle(mask, (320, 180), 80, 1.0, -1)
    brighter = np.clip(frame / 255 + 0.15, 0, 1).astype(np.float32)  # same picture, lit differently
    copy = frame.copy()
    seamless = poisson_blend(frame, brighter, mask)
    assert np.abs(poisson_blend(frame, frame / 255, mask).astype(int) - frame).max() <= 1  # lands in place
    assert np.abs(seamless.astype(int) - frame)[mask > 0].mean() < 1  # the offset is gone
    assert np.abs(feather_blend(frame, brighter, mask).astype(int) - frame)[mask > 0].mean() > 30
    assert np.array_equal(frame, copy)


# Corner, opposite corner, the whole frame, empty, and a 1 px sliver (too thin for seamlessClone: alpha).
@pytest.mark.parametrize("region", [np.s_[:100, :150], np.s_[200:, 500:], np.s_[:, :], np.s_[0:0], np.s_[100, 50:200]])
def test_poisson_blend_is_border_safe_and_leaves_everything_outside_the_mask(region):
    frame = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8)
    face = smooth_image(6)
    mask = np.zeros((H, W), np.float32)
    mask[region] = 1
    out = poisson_blend(frame, face, mask)
    assert out.shape == frame.shape and out.dtype == np.uint8
    outside = cv2.dilate(mask, np.ones((3, 3), np.uint8)) == 0
    assert np.array_equal(out[outside], frame[outside])
    if mask.any():
        changed = (out != frame).any(axis=2)
        edge = np.zeros((H, W), bool)
        edge[[0, -1], :] = edge[:, [0, -1]] = True
        edge &= mask > 0
        assert changed[mask > 0].mean() > 0.9
        assert not edge.any() or changed[edge].mean() > 0.5  # the mask's pixels on the frame's edge too
    # Cloning the frame into itself gives the frame: the clone is not shifted, even at the border.
    assert np.abs(poisson_blend(frame, frame / 255, mask).astype(int) - frame).max() <= 1


def test_combine_masks_modes():
    predicted = np.array([[0.0, 0.2], [1.0, 0.6]], np.float32)
    hull = np.array([[1.0, 0.5], [0.0, 0.6]], np.float32)
    assert np.array_equal(combine_masks(predicted, hull), np.minimum(predicted, hull))  # intersect by default
    assert np.array_equal(combine_masks(predicted, hull, "union"), np.maximum(predicted, hull))
    assert np.array_equal(combine_masks(predicted, hull, "predicted"), predicted)
    assert np.array_equal(combine_masks(predicted, hull, "hull"), hull)
    assert combine_masks(predicted, hull, "hull") is not hull
    with pytest.raises(OptionError, match="mask mode"):
        combine_masks(predicted, hull, "xor")


def test_mode_names_agree_with_the_options_schema():
    assert set(MASK_MODES) == set(CONFIG_MASK_MODES)
    assert set(blend_modes()) == set(BLEND_MODES)


def square(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    return mask


@pytest.mark.parametrize("erode", [0.1, -0.1, 0.0])
def test_refine_mask_is_relative_to_the_face_size(erode):
    small = refine_mask(square(128), 64, erode=erode, blur=0.1)
    large = refine_mask(square(256), 128, erode=erode, blur=0.1)
    assert np.abs(cv2.resize(large, (128, 128), interpolation=cv2.INTER_AREA) - small).mean() < 0.01
    # Eroding by 10% of a 64 px face takes 6.4 px off each side; the soft edge keeps the area about even.
    side = 64 - 2 * 6.4 * np.sign(erode)
    assert small.sum() == pytest.approx(side**2, rel=0.06)


def test_refine_mask_rejects_fractions_out_of_range():
    with pytest.raises(OptionError):
        refine_mask(square(64), 32, erode=0.6)
    with pytest.raises(OptionError):
        refine_mask(square(64), 32, blur=-0.1)


def test_scale_crop_of_one_is_the_identity_and_else_zooms_about_the_centre():
    crop, mask = smooth_image(7, (S, S)), square(S)
    same_crop, same_mask = scale_crop(crop, mask, 1.0)
    assert np.array_equal(same_crop, crop) and np.array_equal(same_mask, mask)
    y, x = np.mgrid[0:S, 0:S]
    spot = np.exp(-((x - 147) ** 2 + (y - 127) ** 2) / 8).astype(np.float32)[..., None].repeat(3, axis=2)
    for scale in (0.8, 1.2):  # the spot is 19.5 px right of the centre (127.5, 127.5) and 0.5 px up
        zoomed, _ = scale_crop(spot, mask, scale)
        assert centroid(zoomed) == pytest.approx([127.5 + scale * 19.5, 127.5 - scale * 0.5], abs=0.03)
    with pytest.raises(OptionError):
        scale_crop(crop, mask, 2.0)


def high_frequency_energy(image: np.ndarray) -> float:
    return float(np.square(cv2.Laplacian(image, cv2.CV_32F)).mean())


def test_sharpen_is_off_at_zero_and_adds_detail_above():
    image = cv2.GaussianBlur(np.random.default_rng(8).random((64, 64, 3)).astype(np.float32), (0, 0), 1.5)
    assert np.array_equal(sharpen(image, 0.0, 1.0), image)
    sharper = sharpen(image, 0.6, 1.0)
    assert sharper.dtype == np.float32 and 0 <= sharper.min() and sharper.max() <= 1
    assert high_frequency_energy(sharper) > 1.5 * high_frequency_energy(image)
    assert abs(sharper.mean() - image.mean()) < 0.01  # detail, not brightness


@pytest.mark.parametrize("mode", blend_modes())
def test_every_blend_mode_keeps_the_frame_outside_the_mask(mode):
    frame = np.random.default_rng(9).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    mask = np.zeros((80, 100), np.float32)
    mask[20:60, 30:70] = cv2.GaussianBlur(np.ones((40, 40), np.float32), (0, 0), 1)
    out = blend(frame, smooth_image(10, (80, 100)), mask, mode)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], frame[mask == 0]) and not np.array_equal(out, frame)


def test_unknown_blend_mode():
    with pytest.raises(OptionError, match="blend mode"):
        blend(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.float32), "x")
