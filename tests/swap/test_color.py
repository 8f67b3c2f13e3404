"""Color transfer: each mode against statistics computed independently (skimage's Lab, numpy moments, CDFs)."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from facewright.errors import OptionError
from facewright.swap.color import color_modes, fit_color, lab_to_rgb, masked_pixels, rgb_to_lab, transfer

SIZE = 64


def blob(seed: int, mean: tuple[float, float, float], spread: list[list[float]]) -> np.ndarray:
    """SIZE x SIZE x 3 correlated Gaussian colors: mean + spread @ N(0, I)."""
    noise = np.random.default_rng(seed).standard_normal((SIZE * SIZE, 3))
    return (np.asarray(mean) + noise @ np.asarray(spread).T).reshape(SIZE, SIZE, 3).astype(np.float32)


def box_mask(inside: float = 1.0) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[8:56, 12:52] = inside
    return mask


# A skin tone and a bluer, wider reference; both moderate, so every linear mode stays in gamut (no clipping).
SOURCE = blob(1, (0.6, 0.45, 0.38), [[0.05, 0, 0], [0.03, 0.03, 0], [0.02, 0.01, 0.02]])
REFERENCE = blob(2, (0.5, 0.45, 0.5), [[0.06, 0, 0], [0.04, 0.04, 0], [0.03, 0.02, 0.04]])


def inside(image: np.ndarray) -> np.ndarray:
    return image[box_mask() > 0.5].astype(np.float64)


def moments(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pixels.mean(axis=0), np.cov(pixels.T, bias=True)


def sliced_distance(a: np.ndarray, b: np.ndarray, directions: int = 64) -> float:
    """Sliced Wasserstein-1 between two equal-size N x 3 samples: mean gap of sorted projections."""
    axes = np.random.default_rng(1234).standard_normal((3, directions))
    axes /= np.linalg.norm(axes, axis=0)
    return float(np.abs(np.sort(a @ axes, axis=0) - np.sort(b @ axes, axis=0)).mean())


def two_clusters(seed: int) -> np.ndarray:
    """A source far from Gaussian: half the pixels reddish, half greenish, in random places."""
    rng = np.random.default_rng(seed)
    centres = np.where(rng.random((SIZE * SIZE, 1)) < 0.5, [0.7, 0.35, 0.3], [0.35, 0.6, 0.35])
    return (centres + 0.04 * rng.standard_normal((SIZE * SIZE, 3))).reshape(SIZE, SIZE, 3).astype(np.float32)


def test_lab_agrees_with_skimage_and_round_trips():
    rgb = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(rgb_to_lab(rgb), rgb2lab(rgb), atol=0.01)  # L is 0..100: 1e-4 relative
    np.testing.assert_allclose(lab_to_rgb(rgb2lab(rgb).astype(np.float32)), lab2rgb(rgb2lab(rgb)), atol=1e-4)
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=5e-5)
    np.testing.assert_allclose(rgb_to_lab(np.ones(3, np.float32)), [100, 0, 0], atol=1e-3)


def test_rct_matches_lab_mean_and_std_inside_the_mask():
    out = inside(transfer(SOURCE, REFERENCE, box_mask(), "rct"))
    assert 0 < out.min() and out.max() < 1  # nothing clipped, else the moments could not match
    got, want = rgb2lab(out[None])[0], rgb2lab(inside(REFERENCE)[None])[0]
    np.testing.assert_allclose(got.mean(axis=0), want.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(got.std(axis=0), want.std(axis=0), atol=1e-3)
    assert np.abs(rgb2lab(inside(SOURCE)[None])[0].mean(axis=0) - want.mean(axis=0)).max() > 1  # it had to move


@pytest.mark.parametrize("mode", ["lct", "mkl"])
def test_linear_modes_match_mean_and_covariance(mode):
    out = inside(transfer(SOURCE, REFERENCE, box_mask(), mode))
    assert 0 < out.min() and out.max() < 1
    (got_mean, got_cov), (want_mean, want_cov) = moments(out), moments(inside(REFERENCE))
    np.testing.assert_allclose(got_mean, want_mean, atol=1e-4)
    np.testing.assert_allclose(got_cov, want_cov, atol=2e-5)  # entries 3e-4..4e-3; the ridge shifts them ~3e-6


def test_mkl_moves_colors_least():
    """Both linear maps reach the reference covariance; the transport map (mkl) moves pixels least doing it.

    The two covariances are long in different, non-perpendicular red-green directions: were their axes shared,
    both maps would be the same.
    """
    def elongated(direction: tuple[float, float], seed: int) -> np.ndarray:
        along = np.array([*direction, 0.0]) / np.hypot(*direction)
        across = np.array([-along[1], along[0], 0.0])
        return blob(seed, (0.5, 0.5, 0.5), np.stack([0.08 * along, 0.015 * across, [0, 0, 0.02]], axis=1).tolist())

    source, reference = elongated((1.0, 0.2), 1), elongated((0.3, 1.0), 2)
    moved = {mode: np.square(inside(transfer(source, reference, box_mask(), mode)) - inside(source)).sum(axis=1).mean()
             for mode in ("lct", "mkl")}
    assert moved["mkl"] < moved["lct"] * 0.97


def test_hist_matches_each_channel_cdf():
    rng = np.random.default_rng(3)
    source = rng.random((SIZE, SIZE, 3)).astype(np.float32)
    reference = rng.beta([2.0, 5.0, 0.7], [5.0, 2.0, 0.7], size=(SIZE, SIZE, 3)).astype(np.float32)
    out, want = inside(transfer(source, reference, box_mask(), "hist")), inside(reference)
    levels = np.linspace(0, 1, 201)
    for channel in range(3):
        cdf = [np.searchsorted(np.sort(x[:, channel]), levels, side="right") / len(x) for x in (out, want)]
        assert np.abs(cdf[0] - cdf[1]).max() < 0.02
    before = np.searchsorted(np.sort(inside(source)[:, 0]), levels, side="right") / len(out)
    assert np.abs(before - np.searchsorted(np.sort(want[:, 0]), levels, side="right") / len(want)).max() > 0.2


@pytest.mark.parametrize("mode", ["idt", "sot"])
def test_iterative_modes_move_the_distribution_to_the_reference(mode):
    source, reference = two_clusters(4), REFERENCE
    before = sliced_distance(inside(source), inside(reference))
    after = sliced_distance(inside(transfer(source, reference, box_mask(), mode)), inside(reference))
    assert after < 0.03 * before  # one iteration already gets below 0.2; three stay above 0.03
    assert after < 0.5 * sliced_distance(inside(transfer(source, reference, box_mask(), "hist")), inside(reference))


@pytest.mark.parametrize("mode", ["idt", "sot"])
def test_iterative_modes_are_deterministic_in_the_seed(mode):
    runs = [transfer(two_clusters(4), REFERENCE, box_mask(), mode, seed=seed) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("mode", sorted(set(color_modes()) - {"none"}))
def test_a_flat_face_takes_the_reference_average(mode):
    """Nothing to stretch (std 0, a singular covariance, one quantile level): the flat color goes to the middle."""
    out = transfer(np.full_like(SOURCE, 0.5), REFERENCE, box_mask(), mode).reshape(-1, 3)
    np.testing.assert_allclose(out, np.broadcast_to(inside(REFERENCE).mean(axis=0), out.shape), atol=0.005)


@pytest.mark.parametrize("mode", ["idt", "sot"])
def test_the_baked_cube_follows_the_exact_map(mode):
    colormap = fit_color(mode, masked_pixels(two_clusters(4), box_mask()), masked_pixels(REFERENCE, box_mask()))
    for image in (two_clusters(4), SOURCE):
        gap = np.abs(colormap.apply(image) - colormap.exact.apply(image))
        assert gap.mean() < 0.005 and gap.max() < 0.05  # trilinear on a 1/32 grid smooths the finest wiggles


def test_none_is_the_identity():
    np.testing.assert_array_equal(transfer(SOURCE, REFERENCE, box_mask(), "none"), SOURCE)


@pytest.mark.parametrize("mode", color_modes())
def test_every_mode_keeps_the_contract(mode):
    extreme = np.clip(REFERENCE * 3 - 0.8, 0, 1)  # saturated: maps will push some pixels out of [0, 1]
    colormap = fit_color(mode, masked_pixels(SOURCE, box_mask()), masked_pixels(extreme, box_mask()))
    other = np.random.default_rng(5).random((70, 61, 3)).astype(np.float32)  # not the fitted size, ROW-ragged
    for image in (SOURCE, other, other.reshape(-1, 3)):
        out = colormap.apply(image)
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mode", color_modes())
def test_too_few_masked_pixels_leave_the_face_as_it_is(mode):
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[0, :10] = 1  # a face cut off at the frame border: 10 pixels
    np.testing.assert_array_equal(transfer(SOURCE, REFERENCE, mask, mode), SOURCE)
    np.testing.assert_array_equal(transfer(SOURCE, REFERENCE, np.zeros_like(mask), mode), SOURCE)


def test_unknown_mode_is_an_option_error():
    with pytest.raises(OptionError, match="unknown color mode 'lab'") as caught:
        transfer(SOURCE, REFERENCE, box_mask(), "lab")
    assert "rct" in caught.value.fix


def test_registry_has_every_mode():
    assert set(color_modes()) == {"none", "rct", "lct", "mkl", "idt", "sot", "hist"}


def test_masked_pixels_takes_a_fixed_subset_of_the_masked_pixels():
    image = np.random.default_rng(6).random((SIZE, SIZE, 3)).astype(np.float32)
    mask = box_mask(0.6)  # above the 0.5 threshold: counts as inside
    every = masked_pixels(image, mask, limit=10**6)
    assert len(every) == 48 * 40
    some = masked_pixels(image, mask, limit=500, seed=3)
    assert some.shape == (500, 3) and some.dtype == np.float32
    np.testing.assert_array_equal(some, masked_pixels(image, mask, limit=500, seed=3))
    assert {tuple(p) for p in some} <= {tuple(p) for p in every}
    assert len(masked_pixels(image, box_mask(0.5))) == 0  # 0.5 itself is outside
