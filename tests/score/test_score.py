"""`facewright score` on real clips: an unchanged video scores as unchanged, a face pasted from another
person's photo scores as that person, shuffled frames flicker, a hand painted over is counted, a real swap
gets its report and a marked sheet of its worst frames, bad input is refused."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from facewright import api
from facewright.cli import main
from facewright.errors import InputError, InputNotFoundError, NoFaceError, NoVideoStreamError, OptionError
from facewright.faces.hands import HandTracker, around_faces, hand_mask
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import Landmarker
from facewright.faces.mask import hull_mask
from facewright.faces.sface import SAME_PERSON, SFaceEncoder
from facewright.media import read_image, read_video, write_image
from facewright.media.writer import VideoWriter
from facewright.provenance.label import Label, apply_label
from facewright.provenance.watermark import embed
from facewright.score.run import _sheet_plan
from facewright.score.scorer import FrameScorer, score_frames
from facewright.score.source import Source, source_from_file
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL
from tests.test_bad_input import make_case


@pytest.fixture(scope="module")
def encoder():
    return IdentityEncoder()


@pytest.fixture(scope="module")
def sface():
    return SFaceEncoder()


@pytest.fixture(scope="module")
def clip(sample, tmp_path_factory):
    """24 frames of single_face.mp4 (every third: more motion per frame), re-encoded once."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    frames = [f.image for f in read_video(sample("single_face.mp4"))][::3]
    _write(path, frames)
    return path, frames


def _write(path, frames, fps=10):
    with VideoWriter(path, width=frames[0].shape[1], height=frames[0].shape[0], fps=fps) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame, i)
    return path


def _paste(frame, points, donor, donor_points, feather=3):
    """`donor`'s face moved onto the face at `points` (similarity fit of the 68 points), hull feathered by
    a Gaussian of `feather` pixels (0: a hard edge)."""
    matrix, _ = cv2.estimateAffinePartial2D(donor_points.astype(np.float32), points.astype(np.float32))
    warped = cv2.warpAffine(donor, matrix, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR)
    mask = hull_mask(frame.shape, points)
    mask = (cv2.GaussianBlur(mask, (0, 0), feather) if feather else (mask > 0.5).astype(np.float32))[..., None]
    return np.clip(warped * mask + frame * (1 - mask), 0, 255).astype(np.uint8)


def test_an_unchanged_video_scores_as_unchanged(clip, sample, encoder, sface):
    path, _ = clip
    source = source_from_file(sample("astronaut.png"), encoder, sface)
    frames, label_seen = score_frames(path, path, source, samples=3, encoder=encoder, sface=sface)
    assert len(frames) == 24 and all(f.face for f in frames) and not label_seen
    assert not any(f.swapped for f in frames)
    sampled = [f for f in frames if f.sface_to_target is not None]
    assert len(sampled) == 3 and all(f.dlib_to_target == 0.0 and not f.dlib_as_source for f in sampled)
    # SFace, the judge the headline reports: person B left as they were is B, not A.
    assert all(f.sface_to_target == pytest.approx(1.0, abs=1e-5) for f in sampled)
    assert all(f.sface_to_source < SAME_PERSON and not f.as_source and not f.closer_to_source for f in sampled)
    assert all(f.expression == 1.0 and f.pose_error == 0.0 for f in frames)
    assert all(f.mouth_agrees and f.eyes_agree for f in frames)
    assert all(f.seam == 0.0 and f.background == 0.0 and f.sharpness == pytest.approx(1.0) for f in frames)
    changes = [(f.output_change, f.input_change) for f in frames[1:]]
    assert all(out == ref > 0 for out, ref in changes)  # the footage moves; the output moves exactly as much


def test_a_face_replaced_by_another_persons_photo_scores_as_that_person(clip, sample, encoder, sface, tmp_path):
    path, frames = clip
    donor = read_image(sample("astronaut.png"))
    with Landmarker() as landmarker:
        [donor_face] = landmarker.detect(donor)
        pasted = [_paste(f, landmarker.detect(f)[0].points68(), donor, donor_face.points68()) for f in frames[:8]]
    _write(tmp_path / "in.mp4", frames[:8])
    _write(tmp_path / "pasted.mp4", pasted)
    as_donor = source_from_file(sample("astronaut.png"), encoder, sface)
    scored, _ = score_frames(tmp_path / "pasted.mp4", tmp_path / "in.mp4", as_donor, samples=4, encoder=encoder,
                             sface=sface)
    assert all(f.swapped for f in scored)
    sampled = [f for f in scored if f.sface_to_source is not None]
    # SFace: about 0.70 like the donor's photo, 0.22 to 0.30 like the face it covers (one person from 0.363)
    assert len(sampled) == 4 and all(f.as_source and f.sface_to_source > 0.6 for f in sampled)
    assert all(f.dlib_as_source and f.dlib_to_source < 0.5 and f.dlib_to_target > 0.6 for f in sampled)
    # The same output against someone else as A: recognized as neither the original nor that person.
    as_other = source_from_file(sample("WolfgangLanger_Pexels.mp4"), encoder, sface)
    scored, _ = score_frames(tmp_path / "pasted.mp4", tmp_path / "in.mp4", as_other, samples=4, encoder=encoder,
                             sface=sface)
    assert not any(f.as_source or f.dlib_as_source for f in scored if f.sface_to_source is not None)


def test_shuffled_frames_raise_the_flicker_ratio(clip, sample, encoder, sface, tmp_path):
    path, frames = clip
    order = [i // 2 if i % 2 == 0 else len(frames) - 1 - i // 2 for i in range(len(frames))]  # 0, 23, 1, 22 ...
    _write(tmp_path / "shuffled.mp4", [frames[i] for i in order])
    source = source_from_file(sample("astronaut.png"), encoder, sface)
    report = api.score(tmp_path / "shuffled.mp4", source=sample("astronaut.png"), target_video=path,
                       workspace=tmp_path / "no-ws", samples=2)
    assert report.summary["stability"]["flicker_ratio"] > 2.0
    unchanged, _ = score_frames(path, path, source, samples=1, encoder=encoder, sface=sface)
    assert sum(f.output_change for f in unchanged[1:]) == sum(f.input_change for f in unchanged[1:])
    # Files only (no workspace): the JSON and the plots, no sheet of faces without consent records.
    assert set(report.files) == {"json", "plots"} and "no contact sheet" in report.notes[0]
    written = json.loads((tmp_path / "shuffled.score" / "score.json").read_text())
    assert len(written["frames"]) == 24 and written["summary"]["stability"]["flicker_ratio"] > 2.0
    assert read_image(tmp_path / "shuffled.score" / "score.png").shape[0] > 500
    assert not (tmp_path / "no-ws").exists()  # scoring never creates a workspace


def test_a_hand_in_front_of_the_face_counts_as_repainted_only_when_the_output_paints_over_it(sample, encoder,
                                                                                            sface):
    """Frame 120 of the WolfgangLanger clip: a hand over her nose and an eye. An output that leaves the hand
    (or only watermarks it) repainted none of it; one that paints over it repainted all of it."""
    frame = next(f for f in read_video(sample("WolfgangLanger_Pexels.mp4")) if f.index == 120)
    reference = frame.image
    with Landmarker() as landmarker, HandTracker(video=False) as tracker:  # apart from the scorer's tracker
        [face] = landmarker.detect(reference)
        hands = tracker.detect(reference, box=around_faces([face.box], reference.shape))
    # a margin of 3 px: two runs of the hand model place the same hand a few pixels apart
    drawn = cv2.dilate(hand_mask(reference.shape, hands), np.ones((7, 7), np.uint8)) > 0.5
    painted = reference.copy()
    painted[drawn] = (40, 200, 40)
    nobody = Source(np.zeros(128, np.float32), np.eye(128, dtype=np.float32)[0], "nobody")  # identity not asked
    outputs = {"left": reference.copy(), "watermarked": embed(reference, 0x1234), "painted": painted}
    with FrameScorer(nobody, encoder, sface, video=True) as scorer:
        seen = {name: scorer.score(120 + i, frame.time + i, output, reference, identity=False)
                for i, (name, output) in enumerate(outputs.items())}
    assert all(s.hand_pixels > 5000 for s in seen.values())  # about 12,000 of 640 x 360
    assert seen["left"].hands_repainted == 0.0 and seen["watermarked"].hands_repainted < 0.01
    assert seen["painted"].hands_repainted > 0.98


@pytest.mark.slow
def test_a_real_swap_gets_a_report_and_a_marked_sheet_of_its_worst_frames(model_ws, sample, tmp_path, capsys):
    target = sample("single_face.mp4")
    [swapped] = api.swap(target, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=model_ws)
    code = main(["--workspace", str(model_ws), "score", str(swapped.output), "--source", "anna",
                 "--target-video", str(target), "--samples", "6", "--worst", "4"])
    printed = capsys.readouterr().out
    assert code == 0 and "identity by SFace (6 frames)" in printed and "flicker ratio" in printed
    folder = tmp_path / "out.score"
    report = json.loads((folder / "score.json").read_text())
    assert report["summary"]["coverage"]["frames"] == 72 and report["summary"]["coverage"]["swapped"] >= 60
    assert report["label_seen"] and len(report["worst"]) == 4
    assert report["summary"]["background"]["changed_share"] < 0.001  # the label's box is left out
    [sheet] = api.verify([folder / "worst.png"], workspace=model_ws)
    assert sheet.outcome == "verified" and {c.identity for c in sheet.consents} == {"anna", "ben"}
    assert sheet.c2pa.facewright["derived"] == "worst frames of a quality score"


def test_no_sheet_of_faces_without_the_outputs_own_record_and_active_consents(model_ws, sample, tmp_path,
                                                                              signing_keys, monkeypatch):
    """The worst-frames sheet shows real faces: only for this workspace's own, unaltered output, scored
    against the footage it was made from, while every consent behind it is still active."""
    ws_root = tmp_path / "ws"
    shutil.copytree(model_ws, ws_root)  # revoking below must not touch the shared workspace:
    monkeypatch.setenv("FACEWRIGHT_KEYS", str(tmp_path / "keys"))  # a revocation holds in every copy on one machine
    api.keys_trust(signing_keys / "root.pem")
    api.consent_adopt_ledger(workspace=ws_root)
    target = sample("single_face.mp4")
    [swapped] = api.swap(target, tmp_path / "out.mp4", model=SWAP_MODEL, workspace=ws_root)
    signer, trust = api.keys_show(), api.consent_trust()
    with Workspace.open(ws_root) as ws:
        plan, _ = _sheet_plan(ws, signer, trust, swapped.output, target)
        assert plan is not None and len(plan.consent_ids) == 2
        assert _sheet_plan(None, signer, trust, swapped.output, target)[0] is None
        plan, why = _sheet_plan(ws, signer, trust, target, target)
        assert plan is None and "not an output of this workspace" in why
        plan, why = _sheet_plan(ws, signer, trust, swapped.output, sample("WolfgangLanger_Pexels.mp4"))
        assert plan is None and "not the footage" in why
        reencoded = tmp_path / "reencoded.mp4"
        _write(reencoded, [f.image for f in read_video(swapped.output)])  # the manifest is gone, the mark stays
        plan, why = _sheet_plan(ws, signer, trust, reencoded, target)
        assert plan is None and "does not verify (watermark-only)" in why
    [anna] = api.consent_list(identity="anna", workspace=ws_root)
    api.consent_revoke(anna.id, reason="changed her mind", by="anna", workspace=ws_root)
    with Workspace.open(ws_root) as ws:
        plan, why = _sheet_plan(ws, signer, trust, swapped.output, target)
    assert plan is None and "no longer active (anna: revoked)" in why


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
    with pytest.raises(InputError, match="do not line up in time"):  # the same pictures, re-timed
        api.score(_write(tmp_path / "retimed.mp4", frames, fps=12), source=astronaut, target_video=path,
                  workspace=tmp_path)
    shutil.copyfile(astronaut, tmp_path / "score.png")  # A's photo, named as a report file would be
    with pytest.raises(InputError, match="overwrite an input"):
        api.score(path, source=tmp_path / "score.png", target_video=path, workspace=tmp_path, report=tmp_path)
    assert read_image(tmp_path / "score.png").shape == read_image(astronaut).shape


def test_audio_footage_without_faces_and_an_unclear_person_a_are_refused(clip, sample, tmp_path):
    path, frames = clip
    astronaut = sample("astronaut.png")
    voice, _, _ = make_case("audio-only", tmp_path, sample)
    for output, target, source in ((voice, voice, astronaut), (path, path, voice)):
        with pytest.raises(NoVideoStreamError) as caught:
            api.score(output, source=source, target_video=target, workspace=tmp_path)
        assert caught.value.path == voice and caught.value.fix
    cups = _write(tmp_path / "cups.mp4", [cv2.resize(read_image(sample("coffee.png")), (320, 240))] * 3)
    with pytest.raises(NoFaceError, match="no face in any frame of cups.mp4"):
        api.score(cups, source=astronaut, target_video=cups, workspace=tmp_path)
    person = read_image(sample("single_face.jpg"))
    close_up = cv2.resize(read_image(astronaut)[:300, 100:400], person.shape[1::-1])  # faces of one size
    write_image(np.concatenate([person, close_up], axis=1), tmp_path / "two.png")
    with pytest.raises(InputError, match="shows 2 faces"):
        api.score(path, source=tmp_path / "two.png", target_video=path, workspace=tmp_path)


def test_a_source_video_with_a_second_person_describes_the_one_seen_most(clip, sample, encoder, sface, tmp_path):
    _, frames = clip
    donor = cv2.resize(read_image(sample("astronaut.png")), frames[0].shape[1::-1])
    mixed = _write(tmp_path / "mixed.mp4", frames[:12] + [donor] * 4)
    source = source_from_file(mixed, encoder, sface)
    assert source.description == "mixed.mp4 (12 of 16 faces)"
    astronaut = source_from_file(sample("astronaut.png"), encoder, sface)
    clip_person = source_from_file(_write(tmp_path / "only.mp4", frames[:12]), encoder, sface)
    assert np.linalg.norm(source.embedding - clip_person.embedding) < 0.05  # the same faces, encoded apart
    assert np.linalg.norm(source.embedding - astronaut.embedding) > 0.6
    assert source.sface @ clip_person.sface > 0.99 and source.sface @ astronaut.sface < SAME_PERSON


def test_a_label_is_told_from_a_watermark_and_paint_outside_the_face_is_measured(clip, sample, encoder, sface,
                                                                                  tmp_path):
    _, frames = clip
    rng = np.random.default_rng(3)
    marked = [np.clip(f.astype(np.int16) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8)
              for f in frames[:4]]  # what a watermark does: a few levels everywhere
    labelled = [apply_label(f, Label("ai-generated")) for f in marked]
    painted = [f.copy() for f in marked]
    height, width = frames[0].shape[:2]
    for f in painted:  # a patch in the middle of the left edge: no face, no label box
        f[height // 2 - 20:height // 2 + 20, 10:50] = (255, 0, 255)
    reference = _write(tmp_path / "in.mp4", frames[:4])
    source = source_from_file(sample("astronaut.png"), encoder, sface)
    seen = {}
    for name, pictures in (("marked", marked), ("labelled", labelled), ("painted", painted)):
        seen[name] = score_frames(_write(tmp_path / f"{name}.mp4", pictures), reference, source, samples=1,
                                  encoder=encoder, sface=sface)
    assert [seen[name][1] for name in ("marked", "labelled", "painted")] == [False, True, False]
    background = {name: np.mean([f.background_changed for f in seen[name][0]]) for name in seen}
    assert background["marked"] < 0.001 and background["labelled"] < 0.001  # the label's box is left out
    assert background["painted"] > 0.004  # 40 x 40 of 640 x 360, less the head's share of the frame


def test_a_hard_edged_off_colour_face_scores_a_seam(clip, sample, encoder, sface, tmp_path):
    _, frames = clip
    donor = read_image(sample("astronaut.png"))
    with Landmarker() as landmarker:
        [donor_face] = landmarker.detect(donor)
        points = [landmarker.detect(f)[0].points68() for f in frames[:4]]
    tinted = np.clip(donor.astype(np.int16) + (60, -30, -30), 0, 255).astype(np.uint8)
    pasted = [_paste(f, p, tinted, donor_face.points68(), feather=0) for f, p in zip(frames[:4], points, strict=True)]
    blended = [_paste(f, p, donor, donor_face.points68()) for f, p in zip(frames[:4], points, strict=True)]
    reference = _write(tmp_path / "in.mp4", frames[:4])
    source = source_from_file(sample("astronaut.png"), encoder, sface)
    seams = {}
    for name, pictures in (("hard", pasted), ("feathered", blended)):
        scored, _ = score_frames(_write(tmp_path / f"{name}.mp4", pictures), reference, source, samples=1,
                                 encoder=encoder, sface=sface)
        seams[name] = np.mean([f.seam for f in scored])
    assert seams["hard"] > 5.0 and seams["hard"] > seams["feathered"] + 3.0


def test_a_photo_swap_is_scored_as_one_frame(sample, encoder, sface, tmp_path):
    photo = read_image(sample("single_face.jpg"))
    donor = read_image(sample("astronaut.png"))
    with Landmarker() as landmarker:
        [donor_face] = landmarker.detect(donor)
        [face] = landmarker.detect(photo)
    write_image(_paste(photo, face.points68(), donor, donor_face.points68()), tmp_path / "pasted.png")
    report = api.score(tmp_path / "pasted.png", source=sample("astronaut.png"), target_video=sample("single_face.jpg"),
                       workspace=tmp_path / "none")
    [frame] = report.frames
    assert frame.swapped and frame.as_source and frame.dlib_as_source and frame.output_change is None
