"""`facewright score` on real clips: an unchanged video scores as unchanged, a face pasted from another
person's photo scores as that person, shuffled frames flicker, a real swap gets its report and a marked
sheet of its worst frames, bad input is refused."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facewright import api
from facewright.bench.score import score_frames, source_from_file
from facewright.cli import main
from facewright.errors import InputError, InputNotFoundError, NoFaceError, OptionError
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import Landmarker
from facewright.faces.mask import hull_mask
from facewright.media import read_image, read_video, write_image
from facewright.media.writer import VideoWriter
from tests.conftest import SWAP_MODEL


@pytest.fixture(scope="module")
def encoder():
    return IdentityEncoder()


@pytest.fixture(scope="module")
def clip(sample, tmp_path_factory):
    """24 frames of single_face.mp4 (every third: more motion per frame), re-encoded once."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    frames = [f.image for f in read_video(sample("single_face.mp4"))][::3]
    _write(path, frames)
    return path, frames


def _write(path, frames):
    with VideoWriter(path, width=frames[0].shape[1], height=frames[0].shape[0], fps=10) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame, i)
    return path


def _paste(frame, points, donor, donor_points):
    """`donor`'s face moved onto the face at `points` (similarity fit of the 68 points), feathered hull."""
    matrix, _ = cv2.estimateAffinePartial2D(donor_points.astype(np.float32), points.astype(np.float32))
    warped = cv2.warpAffine(donor, matrix, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR)
    mask = cv2.GaussianBlur(hull_mask(frame.shape, points), (0, 0), 3)[..., None]
    return np.clip(warped * mask + frame * (1 - mask), 0, 255).astype(np.uint8)


def test_an_unchanged_video_scores_as_unchanged(clip, sample, encoder):
    path, _ = clip
    source = source_from_file(sample("astronaut.png"), encoder)
    frames, label_seen = score_frames(path, path, source, samples=3, encoder=encoder)
    assert len(frames) == 24 and all(f.face for f in frames) and not label_seen
    assert not any(f.swapped for f in frames)
    sampled = [f for f in frames if f.to_target is not None]
    assert len(sampled) == 3 and all(f.to_target == 0.0 and not f.as_source for f in sampled)
    assert all(f.expression == 1.0 and f.pose_error == 0.0 for f in frames)
    assert all(f.mouth_agrees and f.eyes_agree for f in frames)
    assert all(f.seam == 0.0 and f.background == 0.0 and f.sharpness == pytest.approx(1.0) for f in frames)
    changes = [(f.output_change, f.input_change) for f in frames[1:]]
    assert all(out == ref > 0 for out, ref in changes)  # the footage moves; the output moves exactly as much


def test_a_face_replaced_by_another_persons_photo_scores_as_that_person(clip, sample, encoder, tmp_path):
    path, frames = clip
    donor = read_image(sample("astronaut.png"))
    with Landmarker() as landmarker:
        [donor_face] = landmarker.detect(donor)
        pasted = [_paste(f, landmarker.detect(f)[0].points68(), donor, donor_face.points68()) for f in frames[:8]]
    _write(tmp_path / "in.mp4", frames[:8])
    _write(tmp_path / "pasted.mp4", pasted)
    as_donor = source_from_file(sample("astronaut.png"), encoder)
    scored, _ = score_frames(tmp_path / "pasted.mp4", tmp_path / "in.mp4", as_donor, samples=4, encoder=encoder)
    assert all(f.swapped for f in scored)
    sampled = [f for f in scored if f.to_source is not None]
    assert len(sampled) == 4 and all(f.as_source and f.to_source < 0.5 and f.to_target > 0.6 for f in sampled)
    # The same output against someone else as A: recognized as neither the original nor that person.
    as_other = source_from_file(sample("WolfgangLanger_Pexels.mp4"), encoder)
    scored, _ = score_frames(tmp_path / "pasted.mp4", tmp_path / "in.mp4", as_other, samples=4, encoder=encoder)
    assert not any(f.as_source for f in scored if f.to_source is not None)


def test_shuffled_frames_raise_the_flicker_ratio(clip, sample, encoder, tmp_path):
    path, frames = clip
    order = [i // 2 if i % 2 == 0 else len(frames) - 1 - i // 2 for i in range(len(frames))]  # 0, 23, 1, 22 ...
    _write(tmp_path / "shuffled.mp4", [frames[i] for i in order])
    source = source_from_file(sample("astronaut.png"), encoder)
    report = api.score(tmp_path / "shuffled.mp4", source=sample("astronaut.png"), target_video=path,
                       workspace=tmp_path / "no-ws", samples=2)
    assert report.summary["stability"]["flicker_ratio"] > 2.0
    unchanged, _ = score_frames(path, path, source, samples=1, encoder=encoder)
    assert sum(f.output_change for f in unchanged[1:]) == sum(f.input_change for f in unchanged[1:])
    # Files only (no workspace): the JSON and the plots, no sheet of faces without consent records.
    assert set(report.files) == {"json", "plots"} and "no contact sheet" in report.notes[0]
    written = json.loads((tmp_path / "shuffled.score" / "score.json").read_text())
    assert len(written["frames"]) == 24 and written["summary"]["stability"]["flicker_ratio"] > 2.0
    assert read_image(tmp_path / "shuffled.score" / "score.png").shape[0] > 500
    assert not (tmp_path / "no-ws").exists()  # scoring never creates a workspace


def test_a_real_swap_gets_a_report_and_a_marked_sheet_of_its_worst_frames(model_ws, sample, tmp_path, capsys):
    target = sample("single_face.mp4")
    [swapped] = api.swap(target, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=model_ws)
    code = main(["--workspace", str(model_ws), "score", str(swapped.output), "--source", "anna",
                 "--target-video", str(target), "--samples", "6", "--worst", "4"])
    printed = capsys.readouterr().out
    assert code == 0 and "identity (6 frames)" in printed and "flicker ratio" in printed
    folder = tmp_path / "out.score"
    report = json.loads((folder / "score.json").read_text())
    assert report["summary"]["coverage"]["frames"] == 72 and report["summary"]["coverage"]["swapped"] >= 60
    assert report["label_seen"] and len(report["worst"]) == 4
    assert report["summary"]["background"]["changed_share"] < 0.001  # the label's box is left out
    [sheet] = api.verify([folder / "worst.png"], workspace=model_ws)
    assert sheet.outcome == "verified" and {c.identity for c in sheet.consents} == {"anna", "ben"}
    assert sheet.c2pa.facewright["derived"] == "worst frames of a quality score"


def test_bad_inputs_are_refused(clip, sample, tmp_path, model_ws):
    path, frames = clip
    astronaut = sample("astronaut.png")
    with pytest.raises(InputError, match="frames"):
        api.score(_write(tmp_path / "short.mp4", frames[:12]), source=astronaut, target_video=path,
                  workspace=tmp_path)
    small = [cv2.resize(f, (320, 180)) for f in frames]
    with pytest.raises(InputError, match="pixel by pixel"):
        api.score(_write(tmp_path / "small.mp4", small), source=astronaut, target_video=path, workspace=tmp_path)
    with pytest.raises(InputError, match="both be images"):
        api.score(astronaut, source=astronaut, target_video=path, workspace=tmp_path)
    with pytest.raises(InputNotFoundError):
        api.score(tmp_path / "missing.mp4", source=astronaut, target_video=path, workspace=tmp_path)
    with pytest.raises(InputError, match="no faceset"):
        api.score(path, source="nobody", target_video=path, workspace=model_ws)
    with pytest.raises(NoFaceError):
        api.score(path, source=sample("coffee.png"), target_video=path, workspace=tmp_path)
    with pytest.raises(OptionError):
        api.score(path, source=astronaut, target_video=path, workspace=tmp_path, samples=0)
    with pytest.raises(OptionError, match="unknown"):
        api.score(path, source=astronaut, target_video=path, workspace=tmp_path, sample=3)
    assert main(["score", str(tmp_path / "missing.mp4"), "--source", str(astronaut), "--target-video",
                 str(path)]) != 0


def test_a_photo_swap_is_scored_as_one_frame(sample, encoder, tmp_path):
    photo = read_image(sample("single_face.jpg"))
    donor = read_image(sample("astronaut.png"))
    with Landmarker() as landmarker:
        [donor_face] = landmarker.detect(donor)
        [face] = landmarker.detect(photo)
    write_image(_paste(photo, face.points68(), donor, donor_face.points68()), tmp_path / "pasted.png")
    report = api.score(tmp_path / "pasted.png", source=sample("astronaut.png"), target_video=sample("single_face.jpg"),
                       workspace=tmp_path / "none")
    [frame] = report.frames
    assert frame.swapped and frame.as_source and frame.output_change is None
