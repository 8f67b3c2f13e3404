"""Fingerprints of marked outputs: the same content through what the watermark survives reads "same", other
content reads "different" (the sample photos and clips; the README has the full table of measured scores)."""
from __future__ import annotations

from itertools import islice, permutations

import cv2
import numpy as np
import pytest

from facewright.media import read_image, read_video
from facewright.provenance import fingerprint
from facewright.provenance.fingerprint import MAX_STORED, THUMB, Recorder, compare, pack, thumbnail, unpack, working


def jpeg(image: np.ndarray, quality: int = 50) -> np.ndarray:
    _, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def crop(image: np.ndarray, keep: float = 0.8, corner: bool = False) -> np.ndarray:
    height, width = image.shape[:2]
    h, w = round(height * keep), round(width * keep)
    top, left = (0, 0) if corner else ((height - h) // 2, (width - w) // 2)
    return image[top:top + h, left:left + w]


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotated about the center, the empty corners cropped off (keeping 84%)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return crop(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR), 0.84)


ATTACKS = {
    "JPEG q50": jpeg,
    "downscale to 1/3": lambda f: cv2.resize(f, (f.shape[1] // 3, f.shape[0] // 3), interpolation=cv2.INTER_AREA),
    "center crop 80%": crop,
    "corner crop 80%": lambda f: crop(f, corner=True),
    "brightness +20%": lambda f: np.clip(f * 1.2, 0, 255).astype(np.uint8),
    "mirror": lambda f: f[:, ::-1],
    "rotate 90": lambda f: np.rot90(f, 1),
    "rotate 180": lambda f: np.rot90(f, 2),
    "rotate 270": lambda f: np.rot90(f, 3),
    "rotate 5 degrees": lambda f: rotate(f, 5),
    "mirror, crop, JPEG": lambda f: jpeg(crop(f[:, ::-1])),
}
PHOTOS = ("astronaut.png", "chelsea.png", "rocket.jpg")


@pytest.fixture(scope="module")
def photos(sample):
    return {name: read_image(sample(name)) for name in PHOTOS}


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_same_photo_after_an_attack_reads_same(photos, attack):
    for name, photo in photos.items():
        match = compare(thumbnail(photo)[None], [working(ATTACKS[attack](photo))])
        assert match.verdict == "same", (name, match.score)


def test_other_photos_read_different(photos):
    for a, b in permutations(photos, 2):
        match = compare(thumbnail(photos[a])[None], [working(photos[b])])
        assert match.verdict == "different", (a, b, match.score)


def test_identical_picture_scores_one_and_flat_pictures_cannot_be_told(photos):
    photo = photos["astronaut.png"]
    match = compare(thumbnail(photo)[None], [working(photo)])
    assert match.score == pytest.approx(1.0, abs=1e-3) and match.pose.describe() == "as made"
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert compare(thumbnail(photo)[None], [working(flat)]).verdict == "unclear"


def test_clip_excerpt_matches_its_frames_and_another_clip_does_not(sample):
    clip = [f.image for f in islice(read_video(sample("WolfgangLanger_Pexels.mp4")), 96)]
    other = [f.image for f in islice(read_video(sample("single_face.mp4")), 48)]
    stored = unpack(pack([thumbnail(f) for f in clip]))
    excerpt = [working(jpeg(f[:, ::-1])) for f in clip[40:80]]  # trimmed, mirrored, re-compressed
    assert compare(stored, excerpt).verdict == "same"
    assert compare(stored, [working(f) for f in other]).verdict == "different"


def test_recorder_thins_long_videos_evenly():
    recorder = Recorder()
    frames = 5 * MAX_STORED + 3
    for index in range(frames):
        recorder.add(np.full((8, 8, 3), index % 256, np.uint8))
    stored = unpack(recorder.packed())
    assert len(stored) <= MAX_STORED and stored.shape[1:] == (THUMB, THUMB)
    assert recorder.every == 4  # thinned by halves as it grew: 2 x MAX_STORED held at most
    assert Recorder().packed() is None


def test_unpack_refuses_another_format():
    with pytest.raises(ValueError, match="fingerprint"):
        unpack(bytes([16]) + bytes(256))
    assert fingerprint.pack([np.zeros((THUMB, THUMB), np.uint8)])[0] == THUMB
