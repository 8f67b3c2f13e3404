"""Synthetic occluders: exact alpha (what `paste` changes is what its alpha says), every kind at every size,
`occlude`'s labels and coverage, determinism for a seed, and a real hand cut out of a sample clip."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.train import occluders
from facewright.train.occluders import (
    COVER,
    KINDS,
    POOLS,
    Cutout,
    OccluderBank,
    cutout,
    make_occluder,
    occlude,
    paste,
)

SIZES = (64, 128, 256)
DRAWN = tuple(k for k in KINDS if k not in POOLS)
THIN = ("strands", "glasses")  # lines that may be thinner than a pixel at size 64: never fully opaque there


def _image(size: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _face_label(size: int = 128) -> np.ndarray:
    """An ellipse where an aligned crop's face would be."""
    label = np.zeros((size, size), np.float32)
    cv2.ellipse(label, (size // 2, size * 9 // 16), (size * 3 // 10, size * 4 // 10), 0, 0, 360, 1.0, -1)
    return label


def _blob(kind: str, seed: int = 0) -> Cutout:
    """A 40 x 60 cut-out: an opaque ellipse with a soft rim, random pixels."""
    alpha = np.zeros((40, 60), np.float32)
    cv2.ellipse(alpha, (30, 20), (26, 16), 15, 0, 360, 1.0, -1, cv2.LINE_AA)
    return Cutout(_image(60, seed)[:40], alpha, kind)


def _bank() -> OccluderBank:
    return OccluderBank(hands=[_blob("hand", 1)], faces=[_blob("face", 2)], patches=[_blob("patch", 3)])


def _edge_width(alpha: np.ndarray) -> float:
    """Pixels of fractional alpha per pixel of outline (of alpha >= 0.5): about 1 for an anti-aliased edge,
    3 or more for a blurred one or a translucent inside."""
    partial = ((alpha > 0.02) & (alpha < 0.98)).sum()
    contours, _ = cv2.findContours((alpha >= 0.5).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return partial / max(1.0, sum(cv2.arcLength(c, True) for c in contours))


# --- paste ---------------------------------------------------------------------------------------------------


def test_paste_changes_exactly_what_its_alpha_says():
    image, blob = _image(), _blob("shape")
    x0, y0 = 30, 50  # the occluder's top-left corner: an integer offset, so no resampling
    centre = (x0 + (60 - 1) / 2, y0 + (40 - 1) / 2)
    out, alpha = paste(image, blob, centre)
    expected_alpha = np.zeros((128, 128), np.float32)
    expected_alpha[y0:y0 + 40, x0:x0 + 60] = blob.alpha
    np.testing.assert_array_equal(alpha, expected_alpha)
    zero, one = alpha == 0, alpha == 1
    np.testing.assert_array_equal(out[zero], image[zero])
    np.testing.assert_array_equal(out[one], blob.pixels[blob.alpha == 1])
    placed = np.pad(blob.pixels, ((y0, 128 - y0 - 40), (x0, 128 - x0 - 60), (0, 0)))
    blend = image * (1.0 - alpha[..., None]) + placed * alpha[..., None]
    assert np.abs(out.astype(float) - blend).max() <= 0.5 + 1e-3  # rounded once, in float32


@pytest.mark.parametrize(("scale", "angle"), [(0.3, 10.0), (0.8, -25.0), (1.0, 45.0), (2.5, 200.0)])
def test_rotated_and_scaled_paste_is_an_exact_blend_with_one_pixel_edges(scale, angle):
    """A flat-coloured occluder: every output pixel is image * (1 - alpha) + colour * alpha, rounded."""
    image, blob = _image(), _blob("shape")
    flat = Cutout(np.full_like(blob.pixels, (200, 30, 90)), blob.alpha, "shape")
    out, alpha = paste(image, flat, (70.3, 60.8), scale, angle)
    assert alpha.dtype == np.float32 and alpha.min() >= 0 and alpha.max() == 1
    blend = image * (1.0 - alpha[..., None]) + np.array([200, 30, 90]) * alpha[..., None]
    assert np.abs(out.astype(float) - blend).max() <= 0.5 + 1e-3
    assert (alpha == 1).sum() > 0.6 * (alpha > 0).sum() * min(1.0, scale)  # opaque inside, not a smear
    assert _edge_width(alpha) < 1.5


def test_paste_clips_at_the_border_and_leaves_its_inputs_alone():
    image, blob = _image(), _blob("shape")
    before_image, before_alpha = image.copy(), blob.alpha.copy()
    out, alpha = paste(image, blob, (-10 + (60 - 1) / 2, 100 + (40 - 1) / 2))  # top-left corner at (-10, 100)
    np.testing.assert_array_equal(alpha[100:, :50], blob.alpha[:28, 10:])
    assert alpha[:100].sum() == 0 and alpha[:, 50:].sum() == 0
    np.testing.assert_array_equal(out[alpha == 1], blob.pixels[:28, 10:][blob.alpha[:28, 10:] == 1])
    outside, none = paste(image, blob, (500.0, -300.0))
    np.testing.assert_array_equal(outside, image)
    assert none.shape == (128, 128) and none.sum() == 0
    np.testing.assert_array_equal(image, before_image)
    np.testing.assert_array_equal(blob.alpha, before_alpha)


# --- make_occluder and cutout --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_at_every_size(kind, size):
    rng = np.random.default_rng(size)
    palette = _image(8).reshape(-1, 3)
    for _ in range(6):
        occluder = make_occluder(kind, size, rng, _bank(), palette)
        height, width = occluder.alpha.shape
        assert occluder.kind == kind and occluder.pixels.shape == (height, width, 3)
        assert occluder.pixels.dtype == np.uint8 and occluder.alpha.dtype == np.float32
        assert 0 <= occluder.alpha.min() and occluder.alpha.max() <= 1
        assert occluder.alpha.sum() > 0 and max(height, width) <= 2 * size
        # trimmed to the alpha: every border row and column of the cut-out holds some of it
        assert min(occluder.alpha[0].max(), occluder.alpha[-1].max(), occluder.alpha[:, 0].max(),
                   occluder.alpha[:, -1].max()) > 0
        assert _edge_width(occluder.alpha) < 2
        if kind not in THIN:
            assert occluder.alpha.max() == 1


@pytest.mark.parametrize("kind", [k for k in KINDS if k in POOLS])
def test_a_real_kind_needs_its_pool(kind):
    rng = np.random.default_rng(0)
    assert make_occluder(kind, 128, rng) is None
    assert make_occluder(kind, 128, rng, OccluderBank()) is None
    assert make_occluder(kind, 128, rng, _bank()) is not None


def test_unknown_kind_and_tiny_size_are_refused():
    with pytest.raises(ValueError, match="unknown occluder kind"):
        make_occluder("umbrella", 128, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 8"):
        make_occluder("shape", 4, np.random.default_rng(0))


def test_cutout_crops_to_the_mask():
    image = _image(100)
    mask = np.zeros((100, 100), np.float32)
    mask[20:50, 30:45] = 1.0
    mask[49, 44] = 0.5
    cut = cutout(image, mask, "patch")
    np.testing.assert_array_equal(cut.pixels, image[20:50, 30:45])
    np.testing.assert_array_equal(cut.alpha, mask[20:50, 30:45])
    assert cutout(image, np.zeros((100, 100), np.float32), "patch") is None
    assert cutout(image, (mask > 0) * np.float32(1e-3), "patch") is None  # nearly empty


def test_same_seed_same_occluders():
    for kind in KINDS:
        first, second = (make_occluder(kind, 128, np.random.default_rng(7), _bank()) for _ in range(2))
        np.testing.assert_array_equal(first.pixels, second.pixels)
        np.testing.assert_array_equal(first.alpha, second.alpha)
    image, label = _image(), _face_label()
    runs = [[occlude(image, label, rng, _bank()) for _ in range(20)] for rng in
            (np.random.default_rng(3), np.random.default_rng(3))]
    for a, b in zip(*runs, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


# --- occlude -------------------------------------------------------------------------------------------------


def test_occlude_labels_and_coverage():
    image, label, rng = _image(), _face_label(), np.random.default_rng(11)
    face = label.sum()
    shares = []
    for _ in range(200):
        out, new_label, alpha = occlude(image, label, rng, _bank(), clean=0.0, shadow=0.0)
        assert out.dtype == np.uint8 and new_label.dtype == np.float32 and alpha.dtype == np.float32
        np.testing.assert_array_equal(new_label, label * (1 - alpha))
        assert (new_label <= label).all() and 0 <= alpha.min() and alpha.max() <= 1
        np.testing.assert_array_equal(out[alpha == 0], image[alpha == 0])  # no shadows asked for
        shares.append((label * alpha).sum() / face)
    shares = np.array(shares)
    occluded = shares[shares > 0]
    assert len(occluded) >= 0.97 * len(shares)  # clean only where no draw landed within COVER
    assert COVER[0] <= occluded.min() and occluded.max() <= COVER[1]
    assert 0.12 < occluded.mean() < 0.35


def test_clean_share_is_respected_and_inputs_untouched():
    image, label, rng = _image(), _face_label(), np.random.default_rng(5)
    image_before, label_before = image.copy(), label.copy()
    clean = [occlude(image, label, rng, clean=0.3)[2].sum() == 0 for _ in range(300)]
    assert 0.22 < np.mean(clean) < 0.38  # 0.3 (and the rare give-up) +- 3 sd of 300 draws
    out, same_label, none = occlude(image, label, rng, clean=1.0)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(same_label, label)
    assert none.sum() == 0
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(label, label_before)


def test_every_kind_is_drawn_hands_and_shapes_most(monkeypatch):
    drawn = []

    def spy(kind, *args, **kwargs):
        drawn.append(kind)
        return make_occluder(kind, *args, **kwargs)

    monkeypatch.setattr(occluders.sample, "make_occluder", spy)  # where `occlude` looks it up
    rng, image, label = np.random.default_rng(2), _image(64), _face_label(64)
    for _ in range(150):
        occlude(image, label, rng, _bank(), clean=0.0)
    counts = {kind: drawn.count(kind) for kind in KINDS}
    assert min(counts.values()) > 0
    rare = max(counts[k] for k in ("face", "patch", "glasses", "cup"))
    assert counts["hand"] > 1.5 * rare and counts["shape"] > 1.5 * rare
    drawn.clear()
    for _ in range(100):
        occlude(image, label, rng, OccluderBank(hands=[_blob("hand")]), clean=0.0)
    assert {"face", "patch"}.isdisjoint(drawn) and set(DRAWN) | {"hand"} == set(drawn)


def test_an_empty_face_stays_clean():
    image = _image()
    out, label, alpha = occlude(image, np.zeros((128, 128), np.float32), np.random.default_rng(0), clean=0.0)
    np.testing.assert_array_equal(out, image)
    assert label.sum() == 0 and alpha.sum() == 0


# --- a real hand ---------------------------------------------------------------------------------------------


def test_a_real_hand_cut_out_of_a_clip_pastes(sample):
    from facewright.faces.hands import HandTracker, hand_mask
    from facewright.media.video import read_video

    # Frame 72: the hand over her mouth. At frame 120 (fingers on her nose, palm out of frame) the landmarker
    # finds the hand only when tracking it from earlier frames (video=True), not in a still (video=False).
    frame = next(f for f in read_video(sample("WolfgangLanger_Pexels.mp4")) if f.index == 72)
    with HandTracker(video=False) as tracker:
        hands = tracker.detect(frame.image)
    assert hands
    mask = hand_mask(frame.image.shape, hands)
    hand = cutout(frame.image, mask, "hand")
    assert hand is not None and hand.alpha.sum() == pytest.approx(mask.sum())
    rng = np.random.default_rng(0)
    occluder = make_occluder("hand", 128, rng, OccluderBank(hands=[hand]))
    assert occluder.kind == "hand" and 0.3 * 128 <= max(occluder.alpha.shape) <= 128
    image = _image()
    out, alpha = paste(image, occluder, (64.0, 90.0))
    assert 0 < (alpha == 1).sum() and _edge_width(alpha) < 1.5
    np.testing.assert_array_equal(out[alpha == 0], image[alpha == 0])
