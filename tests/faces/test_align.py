"""Alignment: Umeyama against a closed form, the template, crops on a real portrait, paste back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.assets import asset_path
from facewright.errors import AssetError, AssetIntegrityError, OptionError
from facewright.faces.align import (
    FACE_TYPES,
    TEMPLATE,
    AlignedFace,
    align_face,
    alignment_matrix,
    invert,
    paste_back,
    template_points,
    transform_points,
    umeyama,
)
from facewright.media import read_image

# Left/right partner of every point of the 68-point layout (jaw, brows, nose, eyes, lips).
MIRROR = np.r_[16:-1:-1, 26:21:-1, 21:16:-1, 27:31, 35:30:-1, 45:41:-1, 47:45:-1, 39:35:-1, 41:39:-1,
               54:47:-1, 59:54:-1, 64:59:-1, 67:64:-1]


def similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def complex_fit(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Independent oracle: in 2D a similarity is z -> a z + b over complex numbers, and least squares
    gives a = <src_c, dst_c> / |src_c|^2 directly (a proper rotation by construction)."""
    zs, zd = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zs_c, zd_c = zs - zs.mean(), zd - zd.mean()
    a = (np.conj(zs_c) * zd_c).sum() / (np.abs(zs_c) ** 2).sum()
    a = a if estimate_scale else a / abs(a)
    b = zd.mean() - a * zs.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:, 2]


def test_umeyama_recovers_a_known_similarity_from_noisy_points():
    rng = np.random.default_rng(3)
    src = rng.uniform(-50, 50, (40, 2))
    truth = similarity(0.6, 2.5, (30.0, -12.0))
    dst = apply(truth, src) + rng.normal(0, 0.05, src.shape)
    found = umeyama(src.astype(np.float32), dst.astype(np.float32))
    assert found.shape == (2, 3) and found.dtype == np.float64
    np.testing.assert_allclose(found[:, :2], truth[:, :2], atol=2e-3)
    np.testing.assert_allclose(found[:, 2], truth[:, 2], atol=0.05)
    np.testing.assert_allclose(found, complex_fit(src, dst), atol=1e-4)  # float32 inputs
    np.testing.assert_allclose(umeyama(src, apply(truth, src)), truth, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(4)
    src = rng.uniform(-10, 10, (30, 2))
    dst = apply(similarity(0.3, 1.5, (5.0, 7.0)), src * [-1.0, 1.0])  # a mirror image: no rotation fits
    found = umeyama(src, dst)
    linear = found[:, :2] / np.sqrt(np.linalg.det(found[:, :2]))
    assert np.linalg.det(found[:, :2]) > 0
    np.testing.assert_allclose(linear @ linear.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(found, complex_fit(src, dst), atol=1e-9)  # the best proper similarity


def test_umeyama_without_scale_is_a_rigid_fit():
    rng = np.random.default_rng(5)
    src = rng.uniform(-20, 20, (25, 2))
    dst = apply(similarity(-1.1, 3.0, (1.0, 2.0)), src) + rng.normal(0, 0.1, src.shape)
    found = umeyama(src, dst, estimate_scale=False)
    assert np.linalg.det(found[:, :2]) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(found, complex_fit(src, dst, estimate_scale=False), atol=1e-9)


@pytest.mark.parametrize(("src", "dst"), [(np.zeros((5, 2)), np.zeros((4, 2))), (np.zeros((5, 3)), np.zeros((5, 3))),
                                          (np.zeros((1, 2)), np.zeros((1, 2)))])
def test_umeyama_rejects_bad_shapes(src, dst):
    with pytest.raises(ValueError):
        umeyama(src, dst)


def test_template_is_a_symmetric_unit_face():
    assert TEMPLATE.shape == (68, 2) and TEMPLATE.dtype == np.float32
    mirrored = TEMPLATE[MIRROR] * [-1, 1] + [1, 0]
    np.testing.assert_allclose(mirrored, TEMPLATE, atol=1e-4)
    fit = TEMPLATE[17:]
    assert fit[:, 0].min() == 0 and fit[:, 0].max() == 1 and fit[:, 1].min() == 0
    # Anatomy in image order: brows above eyes above nose tip above mouth above chin.
    assert TEMPLATE[19, 1] < TEMPLATE[37, 1] < TEMPLATE[30, 1] < TEMPLATE[51, 1] < TEMPLATE[57, 1] < TEMPLATE[8, 1]


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, np.ndarray]:
    """single_face.jpg (RGB) and its 68 dlib landmarks (x, y pixels)."""
    dlib = pytest.importorskip("dlib")
    try:
        photo = asset_path("single_face.jpg", fetch_missing=False)
        model = asset_path("shape_predictor_68_face_landmarks.dat", fetch_missing=False)
    except AssetIntegrityError:
        raise
    except AssetError as exc:
        pytest.skip(f"sample asset not cached: {exc}")
    image = read_image(photo)
    return image, _landmarks(dlib, model, image)


def _landmarks(dlib, model, image: np.ndarray) -> np.ndarray:
    faces = dlib.get_frontal_face_detector()(image, 1)
    assert len(faces) == 1
    shape = dlib.shape_predictor(str(model))(image, faces[0])
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


def test_crop_round_trip_maps_landmarks_back(portrait):
    image, points = portrait
    face = align_face(image, points, size=512)
    assert isinstance(face, AlignedFace) and face.image.shape == (512, 512, 3) and face.image.dtype == np.uint8
    np.testing.assert_allclose(face.matrix @ np.vstack([face.inverse, [0, 0, 1]]), np.eye(3)[:2], atol=1e-12)
    back = transform_points(transform_points(points, face.matrix), face.inverse)
    np.testing.assert_allclose(back, points, atol=1e-3)
    # The landmarker run again on the crop and mapped back lands where it did on the photo.
    dlib = pytest.importorskip("dlib")
    again = _landmarks(dlib, asset_path("shape_predictor_68_face_landmarks.dat", fetch_missing=False), face.image)
    error = np.linalg.norm(transform_points(again, face.inverse) - points, axis=1)
    assert np.median(error) < 1.0 and error.max() < 3.0


def _blobs(shape_hw: tuple[int, int], centres: np.ndarray, sigma: float = 2.5) -> np.ndarray:
    y, x = np.mgrid[0:shape_hw[0], 0:shape_hw[1]]
    glow = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) for cx, cy in centres)
    return np.repeat((255 * glow).round().astype(np.uint8)[..., None], 3, axis=2)


def _centroids(image: np.ndarray, guesses: np.ndarray, radius: int = 8) -> np.ndarray:
    gray = image[..., 0].astype(np.float64)
    found = []
    for cx, cy in np.rint(guesses).astype(int):
        window = gray[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1]
        y, x = np.mgrid[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1]
        found.append([(window * x).sum() / window.sum(), (window * y).sum() / window.sum()])
    return np.array(found)


def test_pixels_land_where_the_points_do(portrait):
    """warpAffine and transform_points share one pixel convention, forward and back (no half-pixel shift)."""
    image, points = portrait
    chosen = points[[0, 8, 16, 19, 24, 30, 36, 45, 48, 54]]
    gaps = np.linalg.norm(chosen[:, None] - chosen[None], axis=2) + 1e3 * np.eye(len(chosen))
    assert gaps.min() > 20  # blobs far enough apart to measure one at a time
    dots = _blobs(image.shape[:2], chosen)
    face = align_face(dots, points, size=256, face_type="head")
    expected = transform_points(chosen, face.matrix)
    assert np.abs(_centroids(face.image, expected) - expected).max() < 0.1  # a half-pixel slip would show as 0.5
    pasted = paste_back(np.zeros_like(dots), face.image, np.ones((256, 256), np.float32), face.inverse)
    assert np.abs(_centroids(pasted, chosen) - chosen).max() < 0.1


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_every_face_type_keeps_the_whole_face_in_the_crop(portrait, margin):
    image, points = portrait
    scales = []
    for face_type in FACE_TYPES:
        matrix = alignment_matrix(points, 256, face_type, margin)
        inside = transform_points(points, matrix)
        assert (inside >= 0).all() and (inside <= 255).all(), face_type
        scales.append(np.sqrt(np.linalg.det(matrix[:, :2])))
    assert scales == sorted(scales, reverse=True) and len(set(scales)) == len(scales)  # face > whole > head


def test_margin_is_a_border_of_that_fraction_of_the_size(portrait):
    _, points = portrait
    tight, loose = alignment_matrix(points, 200, "face"), alignment_matrix(points, 200, "face", margin=0.25)
    assert np.linalg.det(loose[:, :2]) == pytest.approx(0.5**2 * np.linalg.det(tight[:, :2]))
    placed = template_points(200, "face", margin=0.25)
    np.testing.assert_allclose(placed, 100 + 0.5 * (template_points(200, "face") - 100), atol=1e-4)


@pytest.mark.parametrize(("size", "face_type", "margin"), [
    (63, "face", 0.0), (1025, "face", 0.0), (100.5, "face", 0.0), (True, "face", 0.0), ("256", "face", 0.0),
    (256, "eyes", 0.0), (256, "face", -0.1), (256, "face", 0.5), (256, "face", "0.1")])
def test_bad_options_raise_option_error(size, face_type, margin):
    with pytest.raises(OptionError):
        alignment_matrix(TEMPLATE * 100, size, face_type, margin)


def test_bad_points_and_matrices_raise_value_error():
    with pytest.raises(ValueError):
        alignment_matrix(np.zeros((5, 2)), 256)
    with pytest.raises(ValueError):
        invert(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        transform_points(np.zeros((4, 3)), np.eye(3)[:2])


def _crop_coordinates(shape_hw: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[0:shape_hw[0], 0:shape_hw[1]]
    return np.stack([x, y], axis=-1).astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]


def test_paste_back_changes_nothing_outside_the_mask(portrait):
    image, points = portrait
    original = image.copy()
    face = align_face(image, points, size=256)
    noise = np.random.default_rng(6).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.float32)
    mask[64:192, 64:192] = 1.0
    out = paste_back(image, noise, mask, face.inverse)
    np.testing.assert_array_equal(image, original)  # the input is not touched
    where = _crop_coordinates(image.shape[:2], face.matrix)
    outside = ((where < 64 - 1.5) | (where > 191 + 1.5)).any(axis=-1)
    np.testing.assert_array_equal(out[outside], image[outside])
    inside = ((where > 70) & (where < 185)).all(axis=-1)
    assert (out[inside] != image[inside]).any(axis=-1).mean() > 0.9


def test_paste_back_of_the_unchanged_crop_reproduces_the_frame(portrait):
    image, points = portrait
    face = align_face(image, points, size=512)
    out = paste_back(image, face.image, np.ones((512, 512), np.float32), face.inverse)
    where = _crop_coordinates(image.shape[:2], face.matrix)
    inside = ((where > 4) & (where < 507)).all(axis=-1)
    error = np.abs(out.astype(int) - image.astype(int))[inside]
    assert error.mean() < 0.5 and np.percentile(error, 99) <= 3
    np.testing.assert_array_equal(out[~inside & ((where < -2) | (where > 513)).any(axis=-1)],
                                  image[~inside & ((where < -2) | (where > 513)).any(axis=-1)])


def test_paste_back_of_a_crop_off_the_frame_is_a_copy():
    frame = np.full((40, 60, 3), 9, np.uint8)
    off_frame = np.array([[1.0, 0.0, 500.0], [0.0, 1.0, 500.0]])
    out = paste_back(frame, np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), np.float32), off_frame)
    assert out is not frame
    np.testing.assert_array_equal(out, frame)


def test_a_large_photo_aligns_like_the_small_one(portrait):
    """A 6x larger photo into a 128 crop (a 14x shrink) matches the crop of the original photo."""
    image, points = portrait
    big = cv2.resize(image, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    big_points = (points + 0.5) * 6 - 0.5  # pixel centres under resize
    small, large = align_face(image, points, size=128), align_face(big, big_points, size=128)
    difference = np.abs(small.image.astype(int) - large.image.astype(int))
    assert difference.mean() < 1.8  # a plain cubic warp, which skips pixels, gives ~2.4
