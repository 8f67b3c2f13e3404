"""Swapping end to end on the sample clips with the tiny model: frames, timing and audio kept, only the
chosen faces touched, every output labelled, watermarked, signed and verifiable, bad input refused."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from itertools import islice

import av
import cv2
import numpy as np
import pytest

from facewright import api
from facewright.config import COLOR_MODES, SwapOptions
from facewright.errors import ConsentError, DiskFullError, InputError, NoFaceError, OptionError, OutputError
from facewright.faces.landmarks import Landmarker
from facewright.faces.mask import face_size, hull_mask
from facewright.media import probe, read_image, read_video, write_image
from facewright.media.writer import VideoWriter
from facewright.provenance.consent import ConsentRecord, utc_today
from facewright.score.metrics import sharpness
from facewright.swap import blend, color, pipeline
from facewright.swap.compose import Compositor
from facewright.swap.model import load_swap_model
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL as MODEL
from tests.test_bad_input import make_case


def test_option_choices_match_the_registries():
    assert set(COLOR_MODES) == set(color.color_modes())
    assert set(dataclasses.fields(SwapOptions)[0].metadata) >= {"help"}
    assert set(blend.mask_modes()) == {"intersect", "predicted", "hull", "union", "occlusion"}
    assert set(blend.blend_modes()) == {"alpha", "poisson"}


def test_swapped_video_keeps_frames_timing_and_audio_and_verifies(model_ws, sample, tmp_path):
    source = sample("single_face.mp4")
    [result] = api.swap(source, tmp_path / "out.mp4", model=MODEL, workspace=model_ws, preview=3,
                        patch=str(tmp_path / "patch"))
    before, after = probe(source), probe(result.output)
    assert after.video.frames == before.video.frames == result.frames == 72
    assert after.video.fps == pytest.approx(before.video.fps)
    assert after.duration == pytest.approx(before.duration, abs=0.05)
    assert after.audio is not None
    assert result.frames_swapped >= 60 and result.tracks_swapped == 1
    [report] = api.verify([result.output], workspace=model_ws)
    assert report.outcome == "verified" and report.watermark.payload_hex == result.payload_hex
    assert report.record["fingerprint_frames"] == 72  # what verify compares a copy without its manifest with
    assert {c.identity for c in report.consents} == {"anna", "ben"}
    model = report.c2pa.facewright["model"]  # by its hash: a model's name can name people (--name-in-manifest)
    assert model["name"] == f"sha256:{model['sha256'][:16]}" and MODEL not in report.c2pa.manifest_json
    [strip] = api.verify([result.preview], workspace=model_ws)
    assert strip.outcome == "verified" and read_image(result.preview).shape[0] > 3 * 200
    patch = tmp_path / "patch"  # the compositing material: faces (marked), lossless masks, matrices
    assert sorted(p.name for p in patch.iterdir()) == ["track_000.json", "track_000.mp4", "track_000_mask.mp4"]
    frames = json.loads((patch / "track_000.json").read_text())["frames"]
    assert len(frames) == result.frames_swapped == probe(patch / "track_000_mask.mp4").video.frames
    assert np.asarray(frames[0]["matrix"]).shape == (2, 3)
    [faces] = api.verify([patch / "track_000.mp4"], workspace=model_ws)
    # Signed; the watermark's 128 px tile does not fit the 64 px faces of this tiny model (it does at 128+).
    assert faces.outcome == "manifest-only" and faces.c2pa.state in ("valid", "trusted")
    assert faces.record["fingerprint_frames"] == len(frames)  # found through the manifest's payload


def first_frame_face(model_ws, sample) -> tuple[np.ndarray, object, np.ndarray]:
    """The sample clip's first frame, the tiny swap model and the frame's one face (68 points)."""
    frame = next(read_video(sample("single_face.mp4"))).image
    with Workspace.open(model_ws) as ws:
        model = load_swap_model(ws, MODEL, "cpu")
    with Landmarker() as landmarker:
        [face] = landmarker.detect(frame)
    return frame, model, face.points68()


def test_pixels_outside_the_face_are_untouched(model_ws, sample):
    frame, model, points = first_frame_face(model_ws, sample)
    swapped = Compositor(model, SwapOptions(color="rct", color_stats="frame"))(frame, [(0, points)])
    region = hull_mask(frame.shape, points, "head")
    outside = cv2.dilate(region, np.ones((25, 25), np.uint8)) == 0
    assert np.abs(swapped.astype(int) - frame.astype(int))[outside].mean() < 1.0  # exactly 0, in fact
    assert np.abs(swapped.astype(int) - frame.astype(int))[region > 0].mean() > 2.0  # and the face did change



def test_a_swap_with_detail_is_sharper_inside_the_face_and_the_same_outside(model_ws, sample):
    frame, model, points = first_frame_face(model_ws, sample)
    plain, detailed = (Compositor(model, SwapOptions(color_stats="frame", detail=amount))(frame, [(0, points)])
                       for amount in (0.0, 1.0))
    hull = hull_mask(frame.shape, points)
    core = cv2.erode(hull, np.ones((15, 15), np.uint8))
    assert sharpness(detailed, core) > 1.5 * sharpness(plain, core)
    outside = cv2.dilate(hull_mask(frame.shape, points, "head"), np.ones((25, 25), np.uint8)) == 0
    assert outside.sum() > frame.shape[0] * frame.shape[1] / 2
    assert np.array_equal(detailed[outside], plain[outside])


def test_restore_raises_the_new_faces_own_contrast_inside_the_face_and_nothing_outside(model_ws, sample):
    frame, model, points = first_frame_face(model_ws, sample)
    flat, restored = (Compositor(model, SwapOptions(color_stats="frame", detail=0.0, restore=r))(frame, [(0, points)])
                      for r in (0.0, 1.0))
    core = cv2.erode(hull_mask(frame.shape, points), np.ones((31, 31), np.uint8)) > 0.5
    sigma = 0.01 * face_size(points)  # the default --detail-scale: the band just coarser than it is raised

    def contrast(image):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        band = cv2.GaussianBlur(gray, (0, 0), sigma) - cv2.GaussianBlur(gray, (0, 0), 4 * sigma)
        return float(np.square(band[core]).mean())

    assert contrast(restored) > 1.5 * contrast(flat)
    outside = cv2.dilate(hull_mask(frame.shape, points, "head"), np.ones((25, 25), np.uint8)) == 0
    assert np.array_equal(restored[outside], flat[outside])


def test_only_the_target_is_swapped_in_a_photo_of_two_people(model_ws, sample, tmp_path):
    ben = next(read_video(sample("single_face.mp4"))).image
    anna = next(read_video(sample("WolfgangLanger_Pexels.mp4"))).image
    both = write_image(np.concatenate([ben, cv2.resize(anna, (ben.shape[1], ben.shape[0]))], axis=1),
                       tmp_path / "both.png")
    [result] = api.swap(both, tmp_path / "out.png", model=MODEL, workspace=model_ws, label="manipulated")
    assert result.tracks_seen == 2 and result.tracks_swapped == 1
    original, swapped = read_image(both).astype(int), read_image(result.output).astype(int)
    width = ben.shape[1]
    top = slice(0, ben.shape[0] * 3 // 4)  # above the label in the bottom-left corner
    assert np.abs(swapped[top, :width] - original[top, :width]).mean() > 0.5  # ben's half changed
    assert np.abs(swapped[top, width:] - original[top, width:]).mean() < 3.0  # anna's: the watermark only
    [report] = api.verify([result.output], workspace=model_ws)
    assert report.outcome == "verified" and report.label == "manipulated"


def test_every_face_must_be_covered_by_the_target_consent(model_ws, sample, tmp_path):
    anna = tmp_path / "anna.mp4"
    with VideoWriter(anna, width=640, height=360, fps=25) as writer:
        for frame in islice(read_video(sample("WolfgangLanger_Pexels.mp4")), 12):
            writer.write(frame.image, frame.index)
    with pytest.raises(ConsentError, match="not the person in the consent photo"):
        api.swap(anna, tmp_path / "x.mp4", model=MODEL, workspace=model_ws, all_faces=True)
    with pytest.raises(NoFaceError, match="none of the 1 face track"):
        api.swap(anna, tmp_path / "x.mp4", model=MODEL, workspace=model_ws)
    assert not (tmp_path / "x.mp4").exists()


def test_another_target_needs_force_which_the_manifest_records(model_ws, sample, tmp_path):
    photo = model_ws.parent / "ben.png"
    with pytest.raises(OptionError, match="learned ben's faces"):
        api.swap(photo, tmp_path / "x.png", model=MODEL, workspace=model_ws, target="anna")
    api.consent_add("ben-again", photo=photo, role="target", purpose="testing facewright's swap",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=model_ws)
    [result] = api.swap(photo, tmp_path / "x.png", model=MODEL, workspace=model_ws, target="ben-again", force=True)
    [report] = api.verify([result.output], workspace=model_ws)
    assert report.outcome == "verified" and "another person B" in report.c2pa.facewright["forced"]
    assert "ben-again" not in report.c2pa.manifest_json  # who the people are stays in the catalog


def test_bad_inputs_are_refused_and_a_folder_goes_on_past_a_bad_file(model_ws, sample, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        api.swap(tmp_path / "missing.mp4", model=MODEL, workspace=model_ws)
    with pytest.raises(InputError, match="no model named 'nope'"):
        api.swap(sample("single_face.mp4"), model="nope", workspace=model_ws)
    with pytest.raises(OptionError, match="cannot be written as .png"):
        api.swap(sample("single_face.mp4"), tmp_path / "x.png", model=MODEL, workspace=model_ws)
    folder = tmp_path / "photos"
    folder.mkdir()
    ben = next(read_video(sample("single_face.mp4"))).image
    write_image(ben, folder / "a.png")
    write_image(ben, folder / "a.webp")  # same stem: must not overwrite a.png's output
    (folder / "b.jpg").write_bytes(b"not a jpeg")
    results = api.swap(folder, tmp_path / "out", model=MODEL, workspace=model_ws)
    assert [type(r).__name__ for r in results] == ["SwapResult", "SwapResult", "SwapFailure"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.webp.png"]
    with pytest.raises(OptionError, match="unknown option 'lable'"):
        api.swap(folder, model=MODEL, workspace=model_ws, lable="none")
    with pytest.raises(OptionError, match="for video inputs"):
        api.swap(folder / "a.png", tmp_path / "p.png", model=MODEL, workspace=model_ws, preview=2)


def test_a_bystander_next_to_the_target_is_refused_under_all_faces(model_ws, sample, tmp_path):
    clip = tmp_path / "two.mp4"
    frames = zip(islice(read_video(sample("single_face.mp4")), 12),
                 islice(read_video(sample("WolfgangLanger_Pexels.mp4")), 12), strict=True)
    with VideoWriter(clip, width=1280, height=360, fps=25) as writer:
        for i, (ben, anna) in enumerate(frames):
            writer.write(np.concatenate([ben.image, anna.image], axis=1), i)
    with pytest.raises(ConsentError, match="not the person in the consent photo"):
        api.swap(clip, tmp_path / "x.mp4", model=MODEL, workspace=model_ws, all_faces=True)
    [result] = api.swap(clip, tmp_path / "y.mp4", model=MODEL, workspace=model_ws)  # default: ben only
    assert (result.tracks_seen, result.tracks_swapped) == (2, 1)


def test_a_model_trained_under_a_revoked_consent_is_refused(model_ws, sample, tmp_path, monkeypatch):
    monkeypatch.setattr(ConsentRecord, "status", lambda self, today=None: "revoked")
    with pytest.raises(ConsentError, match="which has been revoked"):
        api.swap(sample("single_face.mp4"), tmp_path / "x.mp4", model=MODEL, workspace=model_ws)


def test_cli_swap_prints_where_the_output_went(model_ws, sample, tmp_path, capsys):
    from facewright.cli import main

    code = main(["swap", str(sample("single_face.mp4")), "--model", MODEL, "-o", str(tmp_path / "cli.mp4"),
                 "--workspace", str(model_ws), "--color", "hist", "--blend", "poisson", "--sharpen", "0.5"])
    assert code == 0 and str((tmp_path / "cli.mp4").resolve()) in capsys.readouterr().out
    with Workspace.open(model_ws) as ws:
        row = ws.conn.execute("SELECT config_json FROM runs WHERE command = 'swap' ORDER BY id DESC").fetchone()
    assert json.loads(row["config_json"])["color"] == "hist"


def test_a_video_extracted_for_swap_is_not_searched_again(model_ws, sample, tmp_path, monkeypatch):
    api.consent_add("ben-geometry", photo=model_ws.parent / "ben.png", role="target", purpose="testing the swap",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=model_ws)
    api.extract([sample("single_face.mp4")], "ben-geometry", workspace=model_ws, for_swap=True, size=64)

    def no_landmarker(*args, **kwargs):
        raise AssertionError("the stored geometry should have been used")

    monkeypatch.setattr(pipeline, "Landmarker", no_landmarker)
    [result] = api.swap(sample("single_face.mp4"), tmp_path / "out.mp4", model=MODEL, workspace=model_ws)
    assert result.frames == 72 and result.frames_swapped >= 60 and result.tracks_swapped == 1


def test_an_interrupted_swap_leaves_nothing_at_the_output(model_ws, sample, tmp_path, monkeypatch):
    real = Compositor.many
    calls = {"n": 0}

    def interrupted(self, images, faces, times=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, images, faces, times)

    monkeypatch.setattr(Compositor, "many", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        api.swap(sample("single_face.mp4"), out / "clip.mp4", model=MODEL, workspace=model_ws)
    assert list(out.iterdir()) == []  # no output, no temporary file: the next run starts cleanly
    with Workspace.open(model_ws) as ws:
        assert ws.conn.execute("SELECT status FROM runs ORDER BY id DESC").fetchone()["status"] == "interrupted"


@pytest.mark.parametrize("case", ["audio-only", "zero-byte", "truncated-index-at-end", "text-as-mp4", "huge-image"])
def test_bad_media_gets_a_typed_error_and_writes_nothing(model_ws, sample, tmp_path, case):
    path, _, error = make_case(case, tmp_path, sample)
    out = tmp_path / "out" / ("x.png" if path.suffix == ".png" else "x.mp4")
    with pytest.raises(error) as caught:
        api.swap(path, out, model=MODEL, workspace=model_ws)
    assert caught.value.path == path and caught.value.fix
    assert not out.exists()


def test_a_portrait_phone_clip_of_odd_size_is_swapped_upright(model_ws, sample, tmp_path):
    """Stored sideways with a -90 degree display rotation (as phones do) and 639 x 359 upright (FFV1 allows
    odd sizes): the swap sees the upright picture and writes it upright."""
    upright = [f.image[:359, :639] for f in islice(read_video(sample("single_face.mp4")), 24)]
    clip = tmp_path / "phone.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 359, 639, "yuv444p"
        stream.set_display_rotation(-90)
        for i, image in enumerate(upright):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(image)), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    [result] = api.swap(clip, tmp_path / "out.mp4", model=MODEL, workspace=model_ws, label="none")
    first = next(read_video(result.output)).image
    assert result.frames == 24 and result.frames_swapped >= 20
    assert first.shape[:2] in ((359, 639), (360, 640))  # yuv420p output: an odd side is padded by one row/column
    assert np.abs(first[:300, 400:639].astype(int) - upright[0][:300, 400:].astype(int)).mean() < 4  # upright


@pytest.mark.slow
def test_a_fixed_watermark_id_gives_the_same_pixels_and_random_ids_do_not(model_ws, sample, tmp_path):
    # What makes `bench quality` reproducible: the swap itself is deterministic but for the watermark id.
    from facewright.config import MarkOptions, VideoOptions
    from facewright.swap.run import swap as run_swap

    frames = {}
    with Workspace.open(model_ws) as ws:
        for name, payloads in (("a", iter([7, 8])), ("b", iter([7])), ("c", None)):
            [result] = run_swap(ws, sample("single_face.mp4"), tmp_path / f"{name}.mp4", MODEL, SwapOptions(),
                                MarkOptions(), VideoOptions(), signer=api.keys_show(), trust=api.consent_trust(),
                                payloads=payloads)
            frames[name] = [f.image for f in islice(read_video(result.output), 0, 72, 12)]
            assert result.payload_hex == (f"{7:016x}" if payloads else result.payload_hex)
            ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{7:016x}",))  # an id is unique per catalog
    assert all(np.array_equal(a, b) for a, b in zip(frames["a"], frames["b"], strict=True))
    assert not any(np.array_equal(a, c) for a, c in zip(frames["a"], frames["c"], strict=True))


def test_bad_frames_mid_stream_are_reported_with_the_output_frame_count(model_ws, sample, tmp_path, capsys):
    """A clip with three damaged frames is swapped on the 69 that decode, and the command says so (exit 0)."""
    from facewright.cli import main

    path, _, _ = make_case("corrupt-mid-stream", tmp_path, sample)
    out = tmp_path / "out.mp4"
    code = main(["swap", str(path), "--model", MODEL, "-o", str(out), "--workspace", str(model_ws)])
    err = capsys.readouterr().err
    assert code == 0 and f"warning: {path}: 3 frame(s) could not be decoded (3 damaged packet(s) skipped)" in err
    assert "the output has 69 of the input's 72 frames" in err and probe(out).video.frames == 69


def test_bad_outputs_are_refused_before_any_frame_is_read(model_ws, sample, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the swap started before its output was checked")

    monkeypatch.setattr(pipeline, "read_video", never)
    (tmp_path / "out.mp4").mkdir()
    with pytest.raises(OutputError, match="the output path is an existing folder"):
        api.swap(sample("single_face.mp4"), tmp_path / "out.mp4", model=MODEL, workspace=model_ws)
    if sys.platform.startswith("linux"):  # /sys takes no new file, even from root
        with pytest.raises(OutputError, match="cannot write in the output folder"):
            api.swap(sample("single_face.mp4"), "/sys/facewright/out.mp4", model=MODEL, workspace=model_ws)


def test_a_full_disk_mid_swap_is_a_bad_output_error_and_leaves_nothing(model_ws, sample, tmp_path, full_disk):
    out = tmp_path / "out" / "clip.mp4"
    with pytest.raises(DiskFullError, match=r"the disk is full \(.* MB free in ") as caught:
        api.swap(sample("single_face.mp4"), out, model=MODEL, workspace=model_ws)
    assert caught.value.path == out and caught.value.exit_code == 2
    assert list(out.parent.iterdir()) == []  # no output, no partial file, no temporary folder


def test_a_swap_interrupted_by_sigkill_is_cleaned_up_by_the_next_command(model_ws, sample, tmp_path):
    """SIGKILL runs no cleanup: the next command that opens the workspace and writes into the folder does it."""
    from facewright.cli import main

    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FACEWRIGHT_WORKSPACE"}
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "facewright", "swap", str(sample("single_face.mp4")), "--model",
                                 MODEL, "-o", str(out / "clip.mp4"), "--workspace", str(model_ws)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            deadline = time.monotonic() + 180
            while not list(out.glob(".facewright-swap-*")):  # the second pass is encoding
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()
                time.sleep(0.05)
            proc.kill()
        finally:
            proc.kill()
            proc.wait()
    assert [p.name[:len(".facewright-swap-")] for p in out.iterdir()] == [".facewright-swap-"]  # what it left
    with contextlib.closing(sqlite3.connect(model_ws / "catalog.sqlite")) as conn:
        assert conn.execute("SELECT status FROM runs WHERE pid = ?", (proc.pid,)).fetchone() == ("running",)
    assert main(["mark", str(sample("single_face.jpg")), str(out / "still.png"), "--workspace", str(model_ws)]) == 0
    assert [p.name for p in out.iterdir()] == ["still.png"]
    with contextlib.closing(sqlite3.connect(model_ws / "catalog.sqlite")) as conn:
        status, error = conn.execute("SELECT status, error FROM runs WHERE pid = ?", (proc.pid,)).fetchone()
    assert status == "interrupted" and f"process {proc.pid} ended without closing the run" in error
