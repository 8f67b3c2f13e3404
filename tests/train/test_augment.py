"""Training augmentation: geometry keeps images and masks aligned, colors match independent conversions
(colorsys, scikit-image), and batches are deterministic for a seeded generator."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.color import rgb2lab

from facewright.train.augment import (
    Augmenter,
    AugmentOptions,
    color_jitter,
    hsv_to_rgb,
    lab_to_rgb,
    random_similarity,
    random_warp_field,
    reinhard_transfer,
    rgb_to_hsv,
    rgb_to_lab,
    sample_grid,
    to_float,
    warp,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NO_COLOR = {"hue": 0.0, "saturation": 0.0, "value": 0.0}


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


def _square_faces(n: int = 4, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 black images with an off-centre white rectangle, and the rectangle as the mask."""
    mask = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    mask[:, :, 18:46, 22:38] = 255
    return mask.expand(n, 3, size, size).clone(), mask


def _within_a_pixel(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Boolean N x 1 x H x W sets equal up to a one-pixel border: each lies inside the other's dilation."""
    grow = lambda x: F.max_pool2d(x.float(), 3, stride=1, padding=1) > 0  # noqa: E731
    return bool((a <= grow(b)).all() and (b <= grow(a)).all())


def _random_faces(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    masks = torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)
    return images, masks, (masks > 200).to(torch.uint8) * 255


# --- geometry ---------------------------------------------------------------------------------------------------


def test_image_and_mask_warped_with_one_grid_stay_aligned():
    images, masks = _square_faces()
    theta = random_similarity(4, rotate_deg=25, scale=0.1, shift=0.1, generator=_gen(1))
    grid = sample_grid(theta, 64, random_warp_field(4, 64, strength=0.08, generator=_gen(2)))
    image, mask = warp(to_float(images), grid), warp(to_float(masks), grid)
    bright, support = image.mean(dim=1, keepdim=True) > 0.5, mask > 0.5
    assert _within_a_pixel(bright, support)
    assert not torch.equal(support, masks > 127)  # the square really moved


def test_augmenter_targets_masks_and_priority_stay_aligned():
    images, masks = _square_faces()
    options = AugmentOptions(rotate_deg=25, scale=0.1, shift=0.1, warp=0.08)
    batch = Augmenter(options, 64, _gen(3))(images, masks, masks)
    bright = batch.targets.mean(dim=1, keepdim=True) > 0.45  # colour jitter may dim the white by 10%
    assert _within_a_pixel(bright, batch.masks > 0.5)
    assert torch.equal(batch.masks, batch.priority)
    assert not _within_a_pixel(batch.inputs.mean(dim=1, keepdim=True) > 0.45, batch.masks > 0.5)  # inputs warped


def test_identity_theta_and_zero_warp_return_the_input():
    images = torch.rand(3, 3, 20, 20, generator=_gen(0))
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3)
    field = random_warp_field(3, 20, strength=0.0, generator=_gen(1))
    assert torch.equal(field, torch.zeros_like(field))
    torch.testing.assert_close(warp(images, sample_grid(theta, 20, field)), images, atol=1e-5, rtol=0)


def test_flip_mirrors_about_half_of_the_samples():
    images = torch.rand(64, 3, 8, 8, generator=_gen(0))
    theta = random_similarity(64, rotate_deg=0, scale=0, shift=0, flip=True, generator=_gen(4))
    out = warp(images, sample_grid(theta, 8))
    flipped = theta[:, 0, 0] < 0
    assert 16 < int(flipped.sum()) < 48
    torch.testing.assert_close(out[flipped], images[flipped].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[~flipped], images[~flipped], atol=1e-5, rtol=0)
    no_flip = random_similarity(64, rotate_deg=0, scale=0, shift=0, flip=False, generator=_gen(4))
    assert bool((no_flip[:, 0, 0] > 0).all())


def test_similarity_stays_within_its_ranges():
    theta = random_similarity(500, rotate_deg=10, scale=0.05, shift=0.05, flip=False, generator=_gen(5))
    zoom = torch.linalg.det(theta[:, :, :2]).sqrt()
    angle = torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert bool(((zoom >= 0.95 - 1e-6) & (zoom <= 1.05 + 1e-6)).all())
    assert bool((angle.abs() <= 10 + 1e-4).all()) and float(angle.abs().max()) > 9
    assert bool((theta[:, :, 2].abs() <= 0.1 + 1e-6).all()) and float(theta[:, :, 2].abs().max()) > 0.09


def test_warp_field_is_bounded_smooth_and_still_at_the_borders():
    field = random_warp_field(8, 64, strength=0.05, cells=5, generator=_gen(6))
    assert field.shape == (8, 64, 64, 2)
    assert float(field.abs().max()) > 0.02
    for edge in (field[:, 0], field[:, -1], field[:, :, 0], field[:, :, -1]):
        assert float(edge.abs().max()) < 1e-6
    assert float((field[:, 1:] - field[:, :-1]).abs().max()) < 0.02  # smooth: no jumps between neighbours
    with pytest.raises(ValueError, match="cells"):
        random_warp_field(1, 8, cells=2)


# --- the augmenter ----------------------------------------------------------------------------------------------


def test_zero_warp_gives_identical_inputs_and_targets():
    images, masks, priority = _random_faces(4, 32)
    batch = Augmenter(AugmentOptions(warp=0.0), 32, _gen(0))(images, masks, priority)
    assert torch.equal(batch.inputs, batch.targets)
    warped = Augmenter(AugmentOptions(warp=0.05), 32, _gen(0))(images, masks, priority)
    assert not torch.equal(warped.inputs, warped.targets)
    torch.testing.assert_close(warped.targets, batch.targets)  # the warp only touches inputs


@pytest.mark.parametrize("device", DEVICES)
def test_batch_shapes_range_dtype_and_device(device):
    images, masks, priority = (t.to(device) for t in _random_faces(5, 48))
    options = AugmentOptions(color_transfer=True)
    batch = Augmenter(options, 32, _gen(0, device))(images, masks, priority, images.flip(0))
    for tensor, channels in ((batch.inputs, 3), (batch.targets, 3), (batch.masks, 1), (batch.priority, 1)):
        assert tensor.shape == (5, channels, 32, 32)
        assert tensor.dtype == torch.float32 and tensor.device.type == device
        assert float(tensor.min()) >= 0 and float(tensor.max()) <= 1
    assert Augmenter(options, 48, _gen(0, device))(images, masks).priority is None


def test_deterministic_for_a_seed_and_different_for_another():
    images, masks, priority = _random_faces(4, 32)
    first, again, other = (Augmenter(AugmentOptions(), 32, _gen(seed))(images, masks, priority) for seed in (7, 7, 8))
    for name in ("inputs", "targets", "masks", "priority"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.inputs, other.inputs) and not torch.equal(first.targets, other.targets)


def test_bad_inputs_raise_value_errors():
    images, masks, _ = _random_faces(2, 16)
    augment = Augmenter(AugmentOptions(), 16, _gen(0))
    with pytest.raises(ValueError, match="masks"):
        augment(images, masks[:, :, :8])
    with pytest.raises(ValueError, match="uint8"):
        augment(to_float(images), masks)
    with pytest.raises(ValueError, match="theta"):
        sample_grid(torch.zeros(2, 3, 3), 8)


# --- colors -----------------------------------------------------------------------------------------------------


def test_hsv_matches_colorsys_and_round_trips():
    rgb = torch.rand(2, 3, 8, 8, generator=_gen(9))
    rgb[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.5])  # grey and black: the zero-division corners
    rgb[0, :, 0, 1] = 0
    hsv = rgb_to_hsv(rgb)
    pixels = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
    np.testing.assert_allclose(hsv.permute(0, 2, 3, 1).reshape(-1, 3).numpy(), expected, atol=1e-5)
    torch.testing.assert_close(hsv_to_rgb(hsv), rgb, atol=1e-3, rtol=0)


def test_lab_reference_values_and_scikit_image():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 3, 1)
    lab = rgb_to_lab(rgb)[0, :, :, 0].T
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(lab[1], torch.tensor([53.24, 80.09, 67.20]), atol=0.01, rtol=0)
    torch.testing.assert_close(lab[2], torch.zeros(3), atol=1e-3, rtol=0)
    colors = torch.rand(2, 3, 8, 8, generator=_gen(10))
    expected = rgb2lab(colors.permute(0, 2, 3, 1).double().numpy())
    np.testing.assert_allclose(rgb_to_lab(colors).permute(0, 2, 3, 1).numpy(), expected, atol=0.01)


def test_lab_round_trips():
    rgb = torch.rand(3, 3, 16, 16, generator=_gen(11))
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-3, rtol=0)


def _lab_stats(rgb: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample mean and std of scikit-image Lab inside a binary mask (float64 numpy)."""
    lab = rgb2lab(rgb.permute(0, 2, 3, 1).double().numpy())
    inside = mask[:, 0].numpy() > 0.5
    stats = [(lab[i][inside[i]].mean(axis=0), lab[i][inside[i]].std(axis=0)) for i in range(len(lab))]
    return np.array([s[0] for s in stats]), np.array([s[1] for s in stats])


def test_reinhard_moves_masked_lab_statistics_to_the_reference():
    g = _gen(12)
    source = 0.3 + 0.4 * torch.rand(3, 3, 24, 24, generator=g)
    reference = 0.35 + 0.25 * torch.rand(3, 3, 20, 20, generator=g) * torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    mask = torch.zeros(3, 1, 24, 24)
    mask[:, :, 4:20, 6:18] = 1
    ref_mask = torch.zeros(3, 1, 20, 20)
    ref_mask[:, :, 2:14, 5:19] = 1
    out = reinhard_transfer(source, reference, mask, ref_mask)
    assert float(out.min()) > 0 and float(out.max()) < 1  # no clamping, so the statistics can match exactly
    (mean, std), (ref_mean, ref_std) = _lab_stats(out, mask), _lab_stats(reference, ref_mask)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-3)
    np.testing.assert_allclose(std, ref_std, atol=1e-3)
    assert np.abs(_lab_stats(source, mask)[0] - ref_mean).max() > 1  # it did have to move


def test_reinhard_with_one_reference_for_the_whole_batch():
    g = _gen(13)
    source, reference = 0.3 + 0.4 * torch.rand(2, 3, 16, 16, generator=g), 0.4 + 0.2 * torch.rand(1, 3, 16, 16)
    out = reinhard_transfer(source, reference)
    full = torch.ones(2, 1, 16, 16)
    mean, std = _lab_stats(out, full)
    ref_mean, ref_std = _lab_stats(reference, full[:1])
    np.testing.assert_allclose(mean, np.repeat(ref_mean, 2, axis=0), atol=1e-3)
    np.testing.assert_allclose(std, np.repeat(ref_std, 2, axis=0), atol=1e-3)
    with pytest.raises(ValueError, match="reference"):
        reinhard_transfer(source, torch.rand(3, 3, 16, 16))


def test_color_jitter_zero_ranges_is_identity_and_otherwise_per_sample():
    images = torch.rand(6, 3, 8, 8, generator=_gen(14))
    assert torch.equal(color_jitter(images, **NO_COLOR, generator=_gen(0)), images)
    jittered = color_jitter(images, hue=0.05, saturation=0.2, value=0.2, generator=_gen(0))
    assert float(jittered.min()) >= 0 and float(jittered.max()) <= 1
    change = (jittered - images).abs().mean(dim=(1, 2, 3))
    assert bool((change > 1e-3).all()) and float(change.std()) > 1e-4  # each sample draws its own change
    torch.testing.assert_close(color_jitter(images, hue=0.05, generator=_gen(0)),
                               color_jitter(images, hue=0.05, generator=_gen(0)))
