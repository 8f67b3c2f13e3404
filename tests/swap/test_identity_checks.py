"""Per-frame identity checks: a face pasted over the consenting person is never swapped, and the consenting
person's own footage (a hand over the face for a while) is not refused."""
from __future__ import annotations

import random
import shutil
from datetime import timedelta
from itertools import islice

import numpy as np
import pytest

from facewright import api
from facewright.errors import ConsentError
from facewright.faces.align import align_face, paste_back, template_points, transform_points
from facewright.faces.landmarks import MESH_TO_68, FaceLandmarks, Landmarker
from facewright.faces.mask import hull_mask
from facewright.media import read_video, write_image
from facewright.media.writer import VideoWriter
from facewright.provenance.consent import utc_today
from facewright.provenance.likeness import Check, Reference
from facewright.swap import identity
from facewright.swap.identity import CHECK_GAP, IdentityChecker, verdict
from tests.conftest import SWAP_MODEL

# --- the verdict, on constructed checks --------------------------------------------------------------------


def _check(frame: int, ok: bool, judgeable: bool = True) -> Check:
    return Check(frame, 0.6 if ok else 0.1, None if ok else 0.9, judgeable)


def test_a_frame_is_swapped_only_between_two_passing_checks():
    frames = list(range(12))
    checks = [_check(0, True), _check(3, True), _check(5, False), _check(8, True), _check(11, True)]
    judged = verdict(frames, checks)
    assert judged.failed == (5,) and not judged.refused
    assert judged.untouched == {4, 5, 6, 7}  # 3 and 8 are checked and pass; between them sits the failure
    assert verdict(frames, []).untouched == set(frames)  # never checked: never swapped


def test_a_track_whose_sharp_frontal_faces_mostly_fail_is_refused_but_poor_faces_do_not_count():
    frames = list(range(10))
    most_fail = [_check(f, f in (0, 9)) for f in range(10)]
    assert verdict(frames, most_fail).refused
    assert "8 of 10 identity checks failed, at frames 1-8" in verdict(frames, most_fail).describe()
    profiles_fail = [_check(f, f % 3 == 0, judgeable=f % 3 == 0) for f in range(10)]  # failures only in profile
    judged = verdict(frames, profiles_fail)
    assert not judged.refused and judged.untouched  # left untouched, not held against the person


def test_a_failed_sface_check_is_broken_by_dlib():
    assert Check(0, 0.2, 0.55, True).passed and not Check(0, 0.2, 0.65, True).passed
    assert Check(0, 0.4, None, True).passed


# --- where the checks fall ---------------------------------------------------------------------------------


class _Encoders:
    """SFace and dlib stand-ins: a crop's 'identity' is its mean level (0 for the reference person)."""

    def embed_crops(self, crops):
        return np.stack([_feature(float(np.mean(c))) for c in crops])

    def embed(self, image, box):
        return np.full(128, 9.0, np.float32)  # far from everyone: dlib never rescues a failed check here


def _feature(level: float) -> np.ndarray:
    feature = np.zeros(128, np.float32)
    feature[0 if level < 128 else 1] = 1.0
    return feature


def _face() -> FaceLandmarks:
    """A frontal face filling the middle of a 100 x 100 frame: the alignment template's 68 points."""
    points = np.zeros((478, 3), np.float32)
    points[MESH_TO_68, :2] = template_points(100, "face", margin=0.2)
    return FaceLandmarks(points, np.zeros(0, np.float32), (), np.eye(4, dtype=np.float32))


RAMP = np.linspace(0, 100, 100, dtype=np.float32)
PERSON = np.repeat(np.broadcast_to(RAMP, (100, 100))[..., None], 3, axis=2).astype(np.uint8)  # mean 50
OTHER = (150 + PERSON.transpose(1, 0, 2)).astype(np.uint8)  # another pattern, mean 200


def _checked_frames(images: list[np.ndarray], seed: int) -> list[int]:
    reference = Reference(_feature(0.0)[None], np.zeros((1, 128), np.float32))
    checker = IdentityChecker(reference, _Encoders(), _Encoders(), random.Random(seed))
    for index, image in enumerate(images):
        checker.see(0, index, image, _face())
    return [c.frame for c in checker.finish()[0]]


def test_checks_cover_every_few_frames_at_unpredictable_places_first_and_last_included():
    runs = [_checked_frames([PERSON] * 200, seed) for seed in range(4)]
    for checked in runs:
        assert checked[0] == 0 and checked[-1] == 199
        assert max(b - a for a, b in zip(checked, checked[1:], strict=False)) <= CHECK_GAP
    assert len({tuple(c) for c in runs}) == 4  # other seeds, other places


def test_a_jump_in_appearance_checks_both_frames_around_it(monkeypatch):
    monkeypatch.setattr(identity, "CHECK_GAP", 1000)  # only the first frame, the jumps and the last
    assert _checked_frames([PERSON] * 50 + [OTHER] * 50 + [PERSON] * 50, 0) == [0, 49, 50, 99, 100, 149]


# --- on real footage ---------------------------------------------------------------------------------------


def _pasted_clip(sample, path, pasted: set[int]) -> None:
    """single_face.mp4 (ben, the model's consenting target) with anna's face pasted over ben's in `pasted`."""
    anna = next(read_video(sample("WolfgangLanger_Pexels.mp4"))).image
    with Landmarker(video=False) as landmarker:
        anna_face = align_face(anna, landmarker.detect(anna)[0].points68(), 256, "whole_face")
        frames = list(read_video(sample("single_face.mp4")))
        with VideoWriter(path, width=640, height=360, fps=30) as writer:
            for frame in frames:
                image = frame.image
                if frame.index in pasted:
                    ben = align_face(image, landmarker.detect(image)[0].points68(), 256, "whole_face")
                    points = transform_points(landmarker.detect(anna)[0].points68(), anna_face.matrix)
                    mask = hull_mask((256, 256), points, "whole_face")
                    image = paste_back(image, anna_face.image, mask, ben.inverse)
                writer.write(image, frame.index)


def test_a_face_pasted_over_the_consenting_person_between_sparse_checks_is_refused(model_ws, sample, tmp_path):
    """The review's clip: another person's face on every frame except 0, 30 and 60 was swapped in full."""
    clip = tmp_path / "pasted.mp4"
    _pasted_clip(sample, clip, set(range(72)) - {0, 30, 60})
    refusal = r"not the person in the consent photo of 'ben': \d+ of \d+ identity checks failed, at frames 1[,-]"
    with pytest.raises(ConsentError, match=refusal):
        api.swap(clip, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=model_ws)
    assert not (tmp_path / "out.mp4").exists()


def test_a_short_paste_is_left_untouched_and_the_rest_swapped(model_ws, sample, tmp_path):
    clip = tmp_path / "pasted.mp4"
    _pasted_clip(sample, clip, set(range(40, 50)))
    [result] = api.swap(clip, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=model_ws)
    assert 10 <= result.untouched_frames <= 10 + 2 * CHECK_GAP and result.frames_swapped >= 72 - 18
    assert any("left untouched" in note for note in result.notes)
    ins, outs = list(read_video(clip)), list(read_video(result.output))
    with Landmarker(video=False) as landmarker:
        for index in (42, 45, 47):  # pasted: the face is the input's, give or take the watermark
            box = landmarker.detect(ins[index].image)[0].box.astype(int)
            region = (slice(box[1], box[3]), slice(box[0], box[2]))
            change = np.abs(outs[index].image[region].astype(int) - ins[index].image[region].astype(int)).mean()
            assert change < 4, index
        box = landmarker.detect(ins[10].image)[0].box.astype(int)  # not pasted: swapped
        region = (slice(box[1], box[3]), slice(box[0], box[2]))
        assert np.abs(outs[10].image[region].astype(int) - ins[10].image[region].astype(int)).mean() > 8


@pytest.mark.slow
def test_the_consenting_persons_own_clip_with_hands_over_the_face_is_not_refused(model_ws, sample, tmp_path):
    """WolfgangLanger_Pexels.mp4 as a swap target, consent photo = its own first frame: a hand covers the
    face in frames ~58-229, where dlib's distance to the photo passes 0.6; it used to be refused."""
    root = tmp_path / "ws"
    shutil.copytree(model_ws, root)
    frames = list(islice(read_video(sample("WolfgangLanger_Pexels.mp4")), 240))
    photo = write_image(frames[0].image, tmp_path / "anna-target.png")
    api.consent_add("anna", photo=photo, role="target", purpose="testing facewright's per-frame identity checks",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
    clip = tmp_path / "anna.mp4"
    with VideoWriter(clip, width=640, height=360, fps=24) as writer:
        for frame in frames:
            writer.write(frame.image, frame.index)
    [result] = api.swap(clip, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=root, target="anna", force=True)
    assert result.frames_swapped == 240 and result.untouched_frames == 0
