"""Training losses: SSIM against an independent scipy computation, masks that really exclude pixels, priority
weighting, and hand-computed GAN losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from facewright.train.losses import (
    dssim,
    dssim_windows,
    gan_d_loss,
    gan_g_loss,
    gaussian_window,
    mask_loss,
    masked_l1,
    masked_mse,
    reconstruction_loss,
    ssim_map,
    total_variation,
)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _smooth_image(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Images with structure at several scales (SSIM of pure noise says little)."""
    coarse = _rand(n, 3, size // 8, size // 8, seed=seed)
    up = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (0.8 * up + 0.2 * _rand(n, 3, size, size, seed=seed + 1)).clamp(0, 1)


def _center_mask(n: int = 2, size: int = 32, lo: int = 10, hi: int = 22) -> torch.Tensor:
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, lo:hi, lo:hi] = 1
    return mask


def _numpy_ssim(a: np.ndarray, b: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Wang et al.'s SSIM map with scipy Gaussian filtering; 'mirror' is torch's reflect padding."""
    blur = lambda x: gaussian_filter(x, sigma=(0, 0, sigma, sigma), truncate=radius / sigma, mode="mirror")  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


# --- SSIM -------------------------------------------------------------------------------------------------------


def test_gaussian_window_is_normalized_and_centred():
    taps = gaussian_window(7, 1.2, "cpu", torch.float64)
    x = np.arange(7) - 3
    expected = np.exp(-(x**2) / (2 * 1.2**2))
    np.testing.assert_allclose(taps.numpy(), expected / expected.sum(), atol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(6, 1.0, "cpu", torch.float32)


@pytest.mark.parametrize(("window", "sigma"), [(11, 1.5), (7, 1.0)])
def test_ssim_map_matches_scipy(window, sigma):
    a, b = _smooth_image(seed=0), _smooth_image(seed=5)
    got = ssim_map(a, b, window, sigma)
    expected = _numpy_ssim(a.double().numpy(), b.double().numpy(), sigma, window // 2)
    assert got.shape == a.shape
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    mask = _center_mask()
    masked = (1 - expected) / 2 * mask.numpy()
    np.testing.assert_allclose(float(dssim(a, b, mask, window, sigma)), masked.sum() / (mask.sum() * 3), atol=1e-5)


def test_dssim_is_zero_for_equal_images_and_grows_with_noise():
    x = _smooth_image()
    assert abs(float(dssim(x, x))) < 1e-6
    values = [float(dssim(x, (x + level * (_rand(*x.shape, seed=9) - 0.5)).clamp(0, 1))) for level in (0.02, 0.1, 0.4)]
    assert 0 < values[0] < values[1] < values[2] <= 1


def test_dssim_windows_scale_with_resolution():
    assert dssim_windows(256) == [23, 11]
    assert dssim_windows(128) == [11, 5]
    assert dssim_windows(64) == [5, 3]
    assert dssim_windows(64, multiscale=False) == [5]


# --- masks ------------------------------------------------------------------------------------------------------


def _outside_changed(x: torch.Tensor, keep: torch.Tensor, seed: int = 3) -> torch.Tensor:
    """x with every pixel where `keep` is False replaced by new random values."""
    return torch.where(keep, x, _rand(*x.shape, seed=seed))


def test_masked_pixel_losses_ignore_pixels_outside_the_mask():
    pred, target, mask = _smooth_image(seed=0), _smooth_image(seed=1), _center_mask()
    inside = mask.bool()
    for loss in (masked_l1, masked_mse):
        before = loss(pred, target, mask)
        assert float(loss(_outside_changed(pred, inside), target, mask)) == pytest.approx(float(before), abs=1e-7)
        assert float(loss(pred, target)) != pytest.approx(float(before), abs=1e-4)  # the unmasked mean differs
    expected = (pred - target).abs()[inside.expand_as(pred)].mean()
    assert float(masked_l1(pred, target, mask)) == pytest.approx(float(expected), rel=1e-6)


def test_dssim_ignores_pixels_beyond_its_window_from_the_mask():
    pred, target, mask = _smooth_image(seed=0), _smooth_image(seed=1), _center_mask()
    near = torch.nn.functional.max_pool2d(mask, 11, stride=1, padding=5).bool()  # the mask grown by the window radius
    before = float(dssim(pred, target, mask, 11))
    assert float(dssim(_outside_changed(pred, near), target, mask, 11)) == pytest.approx(before, abs=1e-6)
    inside_changed = _outside_changed(pred, ~mask.bool())
    assert float(dssim(inside_changed, target, mask, 11)) != pytest.approx(before, abs=1e-4)


def test_reconstruction_loss_ignores_pixels_off_the_blurred_mask():
    pred, target = _smooth_image(size=64, seed=0), _smooth_image(size=64, seed=1)
    mask = _center_mask(size=64, lo=20, hi=44)
    near = torch.nn.functional.max_pool2d(mask, 7, stride=1, padding=3).bool()  # where the 7-tap blur reaches at 64 px
    before = float(reconstruction_loss(pred, target, mask))
    assert float(reconstruction_loss(_outside_changed(pred, near), target, mask)) == pytest.approx(before, rel=1e-6)
    assert float(reconstruction_loss(pred, _outside_changed(target, near), mask)) == pytest.approx(before, rel=1e-6)
    assert float(reconstruction_loss(_outside_changed(pred, ~mask.bool()), target, mask)) != pytest.approx(before)
    assert float(reconstruction_loss(target, target, mask)) == pytest.approx(0.0, abs=1e-6)


def test_priority_regions_weigh_more():
    target, mask = _smooth_image(size=64, seed=0), _center_mask(size=64, lo=12, hi=52)
    priority = torch.zeros_like(mask)
    priority[:, :, 20:28, 20:28] = 1
    in_priority, elsewhere = target.clone(), target.clone()
    in_priority[:, :, 20:28, 20:28] = 1 - in_priority[:, :, 20:28, 20:28]
    elsewhere[:, :, 36:44, 36:44] = 1 - elsewhere[:, :, 36:44, 36:44]  # an error of similar size, off the eyes
    plain = float(reconstruction_loss(in_priority, target, mask))
    weighted = float(reconstruction_loss(in_priority, target, mask, priority, priority_weight=3.0))
    assert weighted > 1.5 * plain
    assert weighted > 1.5 * float(reconstruction_loss(elsewhere, target, mask, priority, priority_weight=3.0))
    assert float(reconstruction_loss(in_priority, target, mask, priority, priority_weight=0.0)) == pytest.approx(plain)


def test_mask_loss_is_the_mean_squared_error():
    pred, target = _rand(2, 1, 8, 8, seed=1), (_rand(2, 1, 8, 8, seed=2) > 0.5).float()
    assert float(mask_loss(pred, target)) == pytest.approx(float(((pred - target) ** 2).mean()), rel=1e-6)


def test_mismatched_shapes_raise_value_errors():
    x = _rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="one shape"):
        masked_l1(x, x[:1])
    with pytest.raises(ValueError, match="mask"):
        dssim(x, x, torch.ones(2, 3, 16, 16))
    with pytest.raises(ValueError, match="mask"):
        reconstruction_loss(x, x, torch.ones(2, 1, 16, 16), torch.ones(2, 1, 8, 8))


# --- GAN and the rest -------------------------------------------------------------------------------------------

REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 1.5])


def test_hinge_losses_equal_hand_computed_values():
    # D: mean(relu(1 - real)) = (0 + 0.5 + 2) / 3, mean(relu(1 + fake)) = (0 + 1 + 2.5) / 3; G: -mean(fake)
    assert float(gan_d_loss(REAL, FAKE, "hinge")) == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert float(gan_g_loss(FAKE, "hinge")) == pytest.approx(0.5 / 3)


def test_lsgan_losses_equal_hand_computed_values():
    # D: ((1 + 0.25 + 4) / 3 + (4 + 0 + 2.25) / 3) / 2; G: (9 + 1 + 0.25) / 3 / 2
    assert float(gan_d_loss(REAL, FAKE, "lsgan")) == pytest.approx((5.25 / 3 + 6.25 / 3) / 2)
    assert float(gan_g_loss(FAKE, "lsgan")) == pytest.approx(10.25 / 6)
    with pytest.raises(ValueError, match="hinge"):
        gan_g_loss(FAKE, "wgan")


def test_total_variation_of_a_ramp():
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(2, 3, 4, 5) / 4  # steps of 0.25 across, none down
    assert float(total_variation(ramp)) == pytest.approx(0.25)
    assert float(total_variation(torch.full((1, 3, 6, 6), 0.3))) == 0.0


def test_gradients_are_finite_even_for_perfect_predictions_and_empty_masks():
    target, mask = _smooth_image(size=32), _center_mask()
    for pred0, m in ((target.clone(), mask), (_smooth_image(size=32, seed=4), torch.zeros_like(mask))):
        pred = pred0.clone().requires_grad_(True)
        logits = torch.randn(2, 1, 4, 4, requires_grad=True)
        loss = reconstruction_loss(pred, target, m, mask) + mask_loss(pred[:, :1], m) + gan_g_loss(logits)
        loss = loss + gan_d_loss(logits, logits, "lsgan") + total_variation(pred)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all() and torch.isfinite(logits.grad).all()


def test_losses_stay_float32_under_bf16_autocast():
    pred, target, mask = _smooth_image(seed=0), _smooth_image(seed=1), _center_mask()
    exact = reconstruction_loss(pred, target, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = reconstruction_loss(pred.bfloat16(), target, mask)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(float(exact), rel=1e-2)  # only pred's rounding to bf16 differs
