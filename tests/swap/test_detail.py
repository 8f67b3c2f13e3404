"""Detail transfer: the rendered face's low band, the original's high band on the skin, less of it in the
eyes, brows and lips. Constructed images with known bands on a template face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.config import SwapOptions
from facewright.errors import OptionError
from facewright.faces.align import TEMPLATE
from facewright.faces.mask import feature_mask, hull_mask
from facewright.swap.detail import highpass, transfer_detail

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


def test_swap_options_check_the_detail_range():
    assert SwapOptions(detail=0.5).detail == 0.5
    for bad in ({"detail": -0.1}, {"detail": 1.5}, {"detail_scale": 0.0}, {"detail_scale": 0.5}):
        with pytest.raises(OptionError):
            SwapOptions(**bad)

