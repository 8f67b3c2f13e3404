import numpy as np
import pytest

from facewright.collect.inputs import expand_inputs, frame_step
from facewright.collect.quality import Deduper, Quality, crop_hash, hamming, reject_reason, sharpness
from facewright.collect.records import signed64, unsigned64
from facewright.config import FACE_TYPES, ExtractOptions
from facewright.errors import InputNotFoundError, OptionError
from facewright.faces import align


def test_expand_inputs_folders_globs_and_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/one.jpg", "a/deep/two.PNG", "a/clip.mp4", "a/notes.txt", "a/.hidden.jpg", "b.webp"):
        (tmp_path / name).write_bytes(b"x")
    found = expand_inputs([tmp_path / "a", str(tmp_path / "*.webp"), tmp_path / "a" / "one.jpg"])
    assert [(s.path.name, s.kind) for s in found] == [
        ("clip.mp4", "video"), ("two.PNG", "image"), ("one.jpg", "image"), ("b.webp", "image")]
    with pytest.raises(InputNotFoundError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.mov")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match="no images or videos"):
        expand_inputs([tmp_path / "empty"])


def test_frame_step():
    assert frame_step(30, 1, 0) == 1
    assert frame_step(30, 4, 0) == 4
    assert frame_step(30, 1, 5) == 6
    assert frame_step(30, 10, 5) == 10  # the coarser of the two
    assert frame_step(None, 1, 5) == 1


def test_sharpness_falls_with_blur():
    import cv2

    rng = np.random.default_rng(0)
    crisp = (rng.random((256, 256, 3)) > 0.5).astype(np.uint8) * 255
    blurred = cv2.GaussianBlur(crisp, (0, 0), 3)
    assert sharpness(crisp) > 50 * sharpness(blurred)
    assert sharpness(np.full((128, 128, 3), 90, np.uint8)) == 0.0


def test_crop_hash_and_dedupe():
    import cv2

    noise = np.random.default_rng(1).integers(40, 200, (8, 9, 3)).astype(np.uint8)
    image = cv2.resize(noise, (90, 80), interpolation=cv2.INTER_NEAREST)
    same, other = crop_hash(image), crop_hash(image[:, ::-1].copy())
    assert crop_hash(np.clip(image.astype(int) + 3, 0, 255).astype(np.uint8)) == same  # brightness: no change
    assert hamming(same, other) > 20
    dedupe = Deduper(3, [same])
    assert dedupe.is_duplicate(same ^ 0b101) and not dedupe.is_duplicate(other)
    assert not Deduper(0, [same]).is_duplicate(same)  # 0 turns it off
    assert unsigned64(signed64(2**64 - 5)) == 2**64 - 5 and signed64(7) == 7


def test_reject_reasons_in_order():
    good = Quality(face_width=200, sharpness=100, yaw=10, pitch=5, roll=0, eyes_closed=0, mouth_open=0)
    options = ExtractOptions()
    assert reject_reason(good, options) is None
    assert reject_reason(Quality(**{**good.__dict__, "face_width": 20}), options) == "too small"
    assert reject_reason(Quality(**{**good.__dict__, "sharpness": 1}), options) == "too blurry"
    assert reject_reason(Quality(**{**good.__dict__, "yaw": -80}), options) == "profile beyond limit"


def test_extract_options_validate_and_agree_with_align():
    assert FACE_TYPES == align.FACE_TYPES
    for bad in ({"size": 32}, {"every": 0}, {"dedupe": 70}, {"face_type": "torso"}):
        with pytest.raises(OptionError):
            ExtractOptions(**bad)


def test_a_kept_face_is_never_its_own_duplicate():
    """A re-run meets the faces it kept before: its own earlier hash must not reject a face."""
    same = 0x0F0F_F0F0_1234_5678
    dedupe = Deduper(3, {"clip_000003_0": same})
    assert not dedupe.is_duplicate(same ^ 0b1, "clip_000003_0") and dedupe.is_duplicate(same ^ 0b1, "clip_000004_0")
    dedupe.add(same ^ 0xFF00, "clip_000003_0")  # its new crop replaces the old hash
    assert not dedupe.is_duplicate(same, "clip_000004_0")
