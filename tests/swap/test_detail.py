"""Detail transfer: the rendered face's low band, the original's high band on the skin, less of it in the
eyes, brows and lips; contrast restoration: the rendered face's own band below the split raised to the
original's strength. Constructed images with known bands on a template face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.config import SwapOptions
from facewright.errors import OptionError
from facewright.faces.align import TEMPLATE
from facewright.faces.mask import feature_mask, hull_mask
from facewright.swap.detail import (
    MAX_GAIN,
    MOTION_GAP,
    RESTORE_WIDTH,
    MotionTransfer,
    contrast_gain,
    highpass,
    restore_contrast,
    transfer_detail,
)

SIZE, SCALE = 256, 0.02
POINTS = TEMPLATE * 150 + [53, 40]  # a face of about 150 px in a 256 px region


def smooth(seed: int) -> np.ndarray:
    """A 256 x 256 x 3 image with nothing above a few cycles per face."""
    noise = np.random.default_rng(seed).random((8, 8, 3)).astype(np.float32)
    return 0.3 + 0.4 * cv2.resize(noise, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def texture(seed: int, amplitude: float = 0.08) -> np.ndarray:
    """Pixel-scale grain, zero mean: all of it above the split."""
    grain = np.random.default_rng(seed).standard_normal((SIZE, SIZE, 3)).astype(np.float32)
    return amplitude * cv2.GaussianBlur(grain, (0, 0), 0.7)


def regions() -> tuple[np.ndarray, np.ndarray]:
    """(skin, features): face pixels well away from the eyes, brows and lips, and their cores."""
    features = feature_mask((SIZE, SIZE), POINTS)
    face = cv2.erode(hull_mask((SIZE, SIZE), POINTS), np.ones((9, 9), np.uint8)) > 0
    return face & (features == 0), features >= 0.999


def band(image: np.ndarray) -> np.ndarray:
    return highpass(image.astype(np.float32), SCALE * 150)


def test_the_skin_gets_the_originals_fine_detail_and_the_features_keep_the_rendered_face():
    rendered = smooth(0)
    grain = texture(1)
    original = np.clip(smooth(2) + grain, 0, 1)
    out = transfer_detail(rendered, np.rint(original * 255).astype(np.uint8), POINTS, 1.0, SCALE, inside=0.25)
    skin, features = regions()
    assert skin.sum() > 5000 and features.sum() > 500
    moved, wanted = band(out), band(original)
    # On the skin the fine band is the original's (uint8 rounding and clipping aside) ...
    assert np.corrcoef(moved[skin].ravel(), wanted[skin].ravel())[0, 1] > 0.97
    assert np.abs(moved[skin]).mean() == pytest.approx(np.abs(wanted[skin]).mean(), rel=0.1)
    # ... inside the eyes, brows and lips a quarter of it,
    ratio = np.abs(moved[features]).mean() / np.abs(wanted[features]).mean()
    assert 0.15 < ratio < 0.35
    # and the coarse band (identity, shape, expression) stays the rendered face's everywhere.
    coarse = cv2.GaussianBlur(out - rendered, (0, 0), 8)
    assert np.abs(coarse).max() < 0.02


def test_amount_scales_the_transfer_and_zero_changes_nothing():
    rendered, original = smooth(0), np.clip(smooth(2) + texture(1), 0, 1)
    assert np.array_equal(transfer_detail(rendered, original, POINTS, 0.0, SCALE), rendered)
    skin, _ = regions()
    half = band(transfer_detail(rendered, original, POINTS, 0.5, SCALE))[skin]
    full = band(transfer_detail(rendered, original, POINTS, 1.0, SCALE))[skin]
    assert np.abs(half).mean() / np.abs(full).mean() == pytest.approx(0.5, abs=0.05)


def test_the_rendered_faces_own_fine_band_is_replaced_not_added_to():
    """A face already sharp in the wrong way (the model's artefacts) gives way to the original's detail."""
    rendered = np.clip(smooth(0) + texture(3), 0, 1)
    original = np.clip(smooth(2) + texture(1), 0, 1)
    out = transfer_detail(rendered, original, POINTS, 1.0, SCALE)
    skin, _ = regions()
    own = np.corrcoef(band(out)[skin].ravel(), band(rendered)[skin].ravel())[0, 1]
    assert abs(own) < 0.1


def test_the_split_scale_follows_the_face_size():
    """The same face at twice the size keeps twice as coarse a band as detail (scale is of the face)."""
    rendered = smooth(0)
    stripes = 0.05 * np.sin(np.arange(SIZE) * 2 * np.pi / 24).astype(np.float32)  # 24 px period
    original = np.clip(smooth(2) + stripes[None, :, None], 0, 1)
    small = TEMPLATE * 75 + [90, 80]  # half the face: the 24 px stripes are coarse for it
    skin_small = (hull_mask((SIZE, SIZE), small) > 0) & (feature_mask((SIZE, SIZE), small) == 0)
    skin_large, _ = regions()
    large = transfer_detail(rendered, original, POINTS, 1.0, 0.05) - rendered
    little = transfer_detail(rendered, original, small, 1.0, 0.05) - rendered
    assert np.abs(large[skin_large]).mean() > 1.5 * np.abs(little[skin_small]).mean()


def middle(seed: int, rms: float) -> np.ndarray:
    """Zero-mean structure all inside the band restore_contrast works on (sigma to RESTORE_WIDTH x sigma of the
    split), `rms` strong."""
    sigma = SCALE * 150
    noise = np.random.default_rng(seed).standard_normal((SIZE, SIZE, 3)).astype(np.float32)
    structure = cv2.GaussianBlur(noise, (0, 0), sigma) - cv2.GaussianBlur(noise, (0, 0), RESTORE_WIDTH * sigma)
    return rms * structure / structure.std()


def plain(level: float) -> np.ndarray:
    """A face-sized region of one color: nothing in any band (smooth() has its 30-px blobs in the restored one)."""
    return np.full((SIZE, SIZE, 3), level, np.float32)


def mid_band(image: np.ndarray) -> np.ndarray:
    sigma = SCALE * 150
    return cv2.GaussianBlur(image, (0, 0), sigma) - cv2.GaussianBlur(image, (0, 0), RESTORE_WIDTH * sigma)


def test_restore_raises_the_rendered_faces_own_faint_band_to_the_originals_strength():
    own, theirs = middle(4, 0.01), middle(5, 0.025)  # the model draws its outlines at 40% of the footage's
    rendered, original = plain(0.5) + own, plain(0.45) + theirs
    out = restore_contrast(rendered, original, POINTS, 1.0, SCALE)
    hull = hull_mask((SIZE, SIZE), POINTS)
    face = cv2.erode(hull, np.ones((41, 41), np.uint8)) > 0.5  # the inside, clear of the border's ramp
    raised = mid_band(out)[face]
    # near the original's strength inside the face (the band filter, applied to a band, passes less than all of
    # it: the boost lands a little short) and well above the model's own ...
    rms = [float(np.sqrt(np.square(b).mean())) for b in (raised, mid_band(rendered)[face], mid_band(original)[face])]
    assert 0.7 * rms[2] < rms[0] <= rms[2] and rms[0] > 1.8 * rms[1]
    # ... and still the model's own shapes: none of the original's structure comes in
    assert np.corrcoef(raised.ravel(), mid_band(own)[face].ravel())[0, 1] > 0.95
    assert abs(np.corrcoef(raised.ravel(), theirs[face].ravel())[0, 1]) < 0.1
    # the border with the frame, where the mask blends, and what is outside the face are left alone
    assert np.abs(out - rendered)[cv2.dilate(hull, np.ones((5, 5), np.uint8)) == 0].max() < 1e-3  # < 1/4 level
    # the coarse band (shape, identity) is left alone
    assert np.abs(cv2.GaussianBlur(out - rendered, (0, 0), 4 * RESTORE_WIDTH * SCALE * 150)).max() < 0.01


def test_restore_leaves_a_face_as_sharp_as_the_original_and_caps_a_flat_one():
    sharp = plain(0.5) + middle(4, 0.05)
    original = plain(0.45) + middle(5, 0.025)
    assert contrast_gain(sharp, original, POINTS, SCALE) == 1.0
    assert np.array_equal(restore_contrast(sharp, original, POINTS, 1.0, SCALE), sharp)
    flat = plain(0.5) + middle(4, 0.001)
    assert contrast_gain(flat, original, POINTS, SCALE) == MAX_GAIN
    # strength scales the gain's excess over 1; 0 changes nothing
    faint = plain(0.5) + middle(4, 0.01)
    gain = contrast_gain(faint, original, POINTS, SCALE)
    assert 2.0 < gain < MAX_GAIN
    half = restore_contrast(faint, original, POINTS, 0.5, SCALE) - faint
    full = restore_contrast(faint, original, POINTS, 1.0, SCALE) - faint
    assert np.abs(half).mean() / np.abs(full).mean() == pytest.approx(0.5, abs=0.05)
    assert np.array_equal(restore_contrast(faint, original, POINTS, 0.0, SCALE), faint)


CROP = 64
TO_CROP = np.array([[0.25, 0, 0], [0, 0.25, 0]])  # the region -> a 64 px crop of it


def blink(closed: float) -> np.ndarray:
    """Darkening of the eyes (`closed` 0..1) and, as much, of a patch of the cheek and of the brows' middles:
    changes a frame can carry."""
    change = np.zeros((SIZE, SIZE, 3), np.float32)
    for eye in (slice(36, 42), slice(42, 48)):
        x, y = POINTS[eye].mean(axis=0)
        cv2.ellipse(change, (round(x), round(y)), (12, 5), 0, 0, 360, (-0.25 * closed,) * 3, -1)
    cv2.circle(change, (round(POINTS[2, 0]) + 30, round(POINTS[2, 1])), 10, (-0.25 * closed,) * 3, -1)
    for brow in (19, 24):
        cv2.circle(change, (round(POINTS[brow, 0]), round(POINTS[brow, 1])), 4, (-0.25 * closed,) * 3, -1)
    return cv2.GaussianBlur(change, (0, 0), 1.5)


def test_motion_carries_the_originals_blink_in_the_eyes_and_nothing_that_stays_put():
    rendered, steady = smooth(0), smooth(2)  # the model's face never moves; the two faces differ everywhere
    motion = MotionTransfer(1.0, SCALE)
    frames = [0.0] * 12 + [1.0, 1.0, 0.3] + [0.0] * 12
    outs = [motion(1, i / 25, rendered, np.clip(steady + blink(c), 0, 1), POINTS, TO_CROP, CROP)
            for i, c in enumerate(frames)]
    eyes = (feature_mask((SIZE, SIZE), POINTS, brows=False) >= 0.999) & (blink(1.0)[..., 0] < -0.2)
    brows = (feature_mask((SIZE, SIZE), POINTS, brows=False) == 0) & (blink(1.0)[..., 0] < -0.2)
    brows &= feature_mask((SIZE, SIZE), POINTS) >= 0.999
    skin, _ = regions()
    assert eyes.sum() > 100 and brows.sum() > 20
    # Before the blink the original is steady: the two faces' difference stays put and nothing is added.
    assert np.array_equal(outs[0], rendered) and np.abs(outs[11] - rendered).max() < 1e-5
    # The blink's first frame carries the original's change into the eyes, not onto the cheek or the brows
    # (whose shape is much of a face's identity).
    added = outs[12] - rendered
    assert added[eyes].mean() < -0.12 and np.abs(added[skin]).max() < 0.01 and np.abs(added[brows]).max() < 0.01
    # Once the eyes are open again the new face settles back to the model's own within a few frames.
    assert np.abs(outs[-1] - rendered)[eyes].mean() < 0.01
    # A still image, amount 0 and a track seen again after a gap add nothing.
    closed = np.clip(steady + blink(1.0), 0, 1)
    assert np.array_equal(motion(1, None, rendered, closed, POINTS, TO_CROP, CROP), rendered)
    assert np.array_equal(motion(1, 27 / 25 + MOTION_GAP + 0.1, rendered, closed, POINTS, TO_CROP, CROP), rendered)
    assert np.array_equal(MotionTransfer(0.0, SCALE)(1, 0.0, rendered, closed, POINTS, TO_CROP, CROP), rendered)
    # Tracks that ended are forgotten once another starts.
    motion(2, 30.0, rendered, steady, POINTS, TO_CROP, CROP)
    assert set(motion._tracks) == {2}
    half = MotionTransfer(0.5, SCALE)
    half(1, 0.0, rendered, steady, POINTS, TO_CROP, CROP)
    assert (half(1, 0.04, rendered, closed, POINTS, TO_CROP, CROP) - rendered)[eyes].mean() == pytest.approx(
        added[eyes].mean() / 2, rel=0.05)


def test_swap_options_check_the_detail_range():
    assert SwapOptions(detail=0.5).detail == 0.5
    for bad in ({"detail": -0.1}, {"detail": 1.5}, {"detail_scale": 0.0}, {"detail_scale": 0.5},
                {"detail_features": -0.1}, {"detail_features": 1.1}, {"restore": -0.5}, {"restore": 2.0},
                {"motion": -0.1}, {"motion": 1.5}):
        with pytest.raises(OptionError):
            SwapOptions(**bad)

