"""Render and composite as two steps (`swap --render-only DIR`, `composite INPUT --patch DIR`): the same video as
`swap` in one process, a folder an artist may edit (recorded), refused when unfinished, of another input, or
under a consent revoked since the render; a render run again keeps the tracks it completed."""
from __future__ import annotations

import io
import json
import shutil
from itertools import islice

import av
import numpy as np
import pytest

from facewright import api
from facewright.cli import main
from facewright.config import MarkOptions, SwapOptions, VideoOptions
from facewright.errors import ConsentError, OptionError, PatchError
from facewright.files import sha256_file
from facewright.media import read_video
from facewright.media.writer import VideoWriter
from facewright.provenance import signed
from facewright.provenance.consent import ConsentRecord
from facewright.provenance.keys import load_identity
from facewright.swap import color, compose
from facewright.swap.composite import composite
from facewright.swap.rendered import SEAL, color_arrays, color_from_arrays, track_files
from facewright.swap.run import swap as run_swap
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL as MODEL

# Both encoded losslessly: at crf 18, x264's lookahead (mb-tree) moves the quantizers of the whole frame, and of
# earlier frames, after any change of a face, so a one-level difference there spreads 1-2 levels frame-wide.
LOSSLESS = VideoOptions(crf=0, preset="ultrafast")
PAYLOAD = 0x5EED  # the same watermark id for the one-process swap and the composite: the same pixels
# Measured on single_face.mp4 with the tiny model (see the README): the faces go through 8 bits and x264 crf 0
# yuv444p (within one level, two on noise) before color transfer and a 64 -> ~150 px warp; measured 0.17 levels
# mean per frame at most (~1.2 inside the face's box, 0 elsewhere), 8 levels at most for a pixel. Since
# `--restore` (on by default) raises the faint model's own band up to 3x, that rounding is raised with it in the
# face: 0.26 levels mean per frame and 15 levels for a pixel at most (the gain is capped at 3: 3 x 8 = 24).
MEAN_BOUND = 0.4  # levels, mean absolute difference over a frame
MAX_BOUND = 24  # levels, largest single-pixel difference


@pytest.fixture(scope="module")
def rendered(model_ws, sample, tmp_path_factory):
    """single_face.mp4's faces rendered through the CLI (`swap --render-only`), kept for the module."""
    folder = tmp_path_factory.mktemp("render") / "faces"
    code = main(["swap", str(sample("single_face.mp4")), "--model", MODEL, "--render-only", str(folder),
                 "--workspace", str(model_ws)])
    assert code == 0
    return folder


def copy_of(rendered, tmp_path):
    return shutil.copytree(rendered, tmp_path / "faces")


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.mark.slow
def test_render_only_then_composite_equals_swap(model_ws, sample, rendered, tmp_path):
    source = sample("single_face.mp4")
    manifest = json.loads((rendered / "patch.json").read_text())
    names = track_files(0)
    assert sorted(p.name for p in rendered.iterdir()) == sorted(["patch.json", "track_000.json", *names.values()])
    assert manifest["tracks"][0]["sha256"][names["faces"]] == api.verify([rendered / names["faces"]],
                                                                         workspace=model_ws)[0].record["sha256"]
    [faces] = api.verify([rendered / names["faces"]], workspace=model_ws)  # signed, unlabelled, an intermediate
    assert faces.c2pa.state in ("valid", "trusted") and faces.label == "none"
    assert "intermediate" in faces.c2pa.facewright
    with Workspace.open(model_ws) as ws:
        [swapped] = run_swap(ws, source, tmp_path / "swap.mp4", MODEL, SwapOptions(), MarkOptions(), LOSSLESS,
                             signer=api.keys_show(), trust=api.consent_trust(), payloads=iter([PAYLOAD]))
        ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{PAYLOAD:016x}",))  # an id is unique per catalog
        result = composite(ws, source, rendered, tmp_path / "composite.mp4", MarkOptions(), LOSSLESS,
                           signer=api.keys_show(), trust=api.consent_trust(), payloads=iter([PAYLOAD]))
    assert result.frames == swapped.frames == 72 and result.frames_swapped == swapped.frames_swapped
    one, two = list(read_video(swapped.output)), list(read_video(result.output))
    assert [f.pts for f in one] == [f.pts for f in two]
    assert audio_packets(swapped.output) == audio_packets(result.output)
    differences = [np.abs(a.image.astype(int) - b.image.astype(int)) for a, b in zip(one, two, strict=True)]
    worst = max(d.mean() for d in differences), max(d.max() for d in differences)
    assert worst[0] < MEAN_BOUND and worst[1] <= MAX_BOUND, worst
    [report] = api.verify([result.output], workspace=model_ws)
    assert report.outcome == "verified" and report.label == "ai-generated"
    assert {c.identity for c in report.consents} == {"anna", "ben"} and "composited" in report.c2pa.facewright
    assert "edited" not in report.c2pa.facewright


@pytest.mark.slow
def test_an_edited_face_file_is_used_and_recorded_as_edited(model_ws, sample, rendered, tmp_path, capsys):
    folder = copy_of(rendered, tmp_path)
    faces = folder / track_files(0)["faces"]
    frames = list(read_video(faces))
    (faces.parent / "edit").mkdir()
    edit = faces.parent / "edit" / faces.name
    with VideoWriter(edit, width=frames[0].image.shape[1], height=frames[0].image.shape[0], fps=30) as writer:
        for frame in frames:  # an artist's fix: the face lightened, re-encoded (yuv420p crf 18)
            writer.write(np.clip(frame.image.astype(int) + 40, 0, 255).astype(np.uint8), frame.pts)
    shutil.move(edit, faces)
    out = tmp_path / "edited.mp4"
    code = main(["composite", str(sample("single_face.mp4")), "--patch", str(folder), "-o", str(out),
                 "--workspace", str(model_ws)])
    printed = capsys.readouterr().out
    assert code == 0 and "note: edited: patch track 0 faces edited after rendering" in printed
    [report] = api.verify([out], workspace=model_ws)
    assert report.outcome == "verified"
    assert report.c2pa.facewright["edited"] == "patch track 0 faces edited after rendering"


def test_a_track_file_with_frames_missing_is_refused_with_the_fix(model_ws, sample, rendered, tmp_path):
    folder = copy_of(rendered, tmp_path)
    faces = folder / track_files(0)["faces"]
    frames = list(islice(read_video(faces), 10))
    (folder / "short").mkdir()
    with VideoWriter(folder / "short" / faces.name, width=64, height=64, fps=30) as writer:
        for frame in frames:
            writer.write(frame.image, frame.pts)
    shutil.move(folder / "short" / faces.name, faces)
    with pytest.raises(PatchError, match="faces file holds 10 frame") as caught:
        api.composite(sample("single_face.mp4"), tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    assert caught.value.path == faces and "export all" in caught.value.fix
    assert not (tmp_path / "x.mp4").exists()


def test_a_render_of_another_input_or_unfinished_is_refused(model_ws, sample, rendered, tmp_path):
    other = tmp_path / "other.mp4"
    with VideoWriter(other, width=640, height=360, fps=30) as writer:
        for frame in islice(read_video(sample("single_face.mp4")), 6):
            writer.write(frame.image, frame.index)
    with pytest.raises(PatchError, match="made from another input .*single_face.mp4.* not from other.mp4") as caught:
        api.composite(other, tmp_path / "x.mp4", patch=rendered, workspace=model_ws)
    assert "the video it was rendered from" in caught.value.fix
    folder = copy_of(rendered, tmp_path)
    (folder / "patch.json").unlink()  # what a render stopped midway leaves
    with pytest.raises(PatchError, match="the render is unfinished") as caught:
        api.composite(sample("single_face.mp4"), tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    assert "--render-only" in caught.value.fix and not (tmp_path / "x.mp4").exists()


def test_a_consent_revoked_after_the_render_stops_the_composite(model_ws, sample, rendered, tmp_path, monkeypatch):
    monkeypatch.setattr(ConsentRecord, "status", lambda self, today=None: "revoked")
    with pytest.raises(ConsentError, match="is revoked"):
        api.composite(sample("single_face.mp4"), tmp_path / "x.mp4", patch=rendered, workspace=model_ws)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.slow
def test_a_render_run_again_keeps_the_tracks_it_completed(model_ws, sample, rendered, tmp_path, monkeypatch):
    folder = copy_of(rendered, tmp_path)
    (folder / "patch.json").unlink()  # interrupted after its one track was complete

    def no_model(*args, **kwargs):
        raise AssertionError("a complete track was rendered again")

    monkeypatch.setattr(compose.Compositor, "render", no_model)
    [result] = api.swap(sample("single_face.mp4"), model=MODEL, workspace=model_ws, render_only=str(folder))
    assert result.output == folder / "patch.json" and result.tracks_swapped == 1
    assert "1 track(s) kept from an earlier render" in " ".join(result.notes)
    again, first = (json.loads(path.read_text()) for path in (result.output, rendered / "patch.json"))
    assert again.pop(SEAL) != first.pop(SEAL) and again == first  # an ECDSA signature is new each time


@pytest.mark.parametrize("mode", color.color_modes())
def test_every_color_map_survives_the_render_folder(mode):
    rng = np.random.default_rng(1)
    source, reference = rng.random((500, 3), np.float32), rng.random((500, 3), np.float32) ** 2
    fitted = color.fit_color(mode, source, reference)
    np.savez(buffer := io.BytesIO(), **color_arrays(fitted))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        back = color_from_arrays(dict(npz))
    image = rng.random((8, 8, 3), np.float32)
    assert np.array_equal(back.apply(image), fitted.apply(image))


def test_options_that_do_not_fit_render_only_are_refused(model_ws, sample, tmp_path):
    with pytest.raises(OptionError, match="for a video input"):
        api.swap(model_ws.parent / "ben.png", model=MODEL, workspace=model_ws, render_only=str(tmp_path / "r"))
    with pytest.raises(OptionError, match="--render-only writes none"):
        api.swap(sample("single_face.mp4"), model=MODEL, workspace=model_ws, render_only=str(tmp_path / "r"),
                 preview=2)


def resign(folder, manifest: dict, signer) -> None:
    """patch.json rewritten as `manifest`, sealed again by `signer`."""
    manifest = {k: v for k, v in manifest.items() if k != SEAL}
    (folder / "patch.json").write_text(json.dumps({**manifest, SEAL: signed.seal(manifest, signer)}))


def test_moved_geometry_or_a_forged_manifest_is_refused(model_ws, sample, rendered, tmp_path):
    """patch.json is signed; behind the signature, the catalog's record of each faces file is the witness."""
    source = sample("single_face.mp4")
    folder = copy_of(rendered, tmp_path)
    geometry = folder / track_files(0)["geometry"]
    with np.load(geometry, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["points"] = arrays["points"] + 40  # the faces moved onto someone else's
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    geometry.write_bytes(buffer.getvalue())
    with pytest.raises(PatchError, match="geometry .* changed since the render"):
        api.composite(source, tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    manifest = json.loads((folder / "patch.json").read_text())
    manifest["tracks"][0]["sha256"][geometry.name] = sha256_file(geometry)  # the edit's hash written in too
    (folder / "patch.json").write_text(json.dumps(manifest))
    with pytest.raises(PatchError, match="signature does not verify: it was changed after signing") as caught:
        api.composite(source, tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    assert caught.value.path == folder / "patch.json"
    stranger = load_identity(tmp_path / "stranger-keys", display_name="Someone Else")
    resign(folder, manifest, stranger)  # signed again, by a key this machine does not trust
    with pytest.raises(PatchError, match="signed by .*Someone Else.*a signer this machine does not trust"):
        api.composite(source, tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    del manifest[SEAL]
    (folder / "patch.json").write_text(json.dumps(manifest))
    with pytest.raises(PatchError, match="patch.json is not signed"):
        api.composite(source, tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    shutil.rmtree(folder)
    folder = copy_of(rendered, tmp_path)
    manifest = json.loads((folder / "patch.json").read_text())
    manifest["consent_ids"] = manifest["consent_ids"][::-1]  # other consents claimed for the same faces
    resign(folder, manifest, api.keys_show())  # even signed by this machine's own key
    with pytest.raises(PatchError, match="not a render this workspace recorded"):
        api.composite(source, tmp_path / "x.mp4", patch=folder, workspace=model_ws)
    assert not (tmp_path / "x.mp4").exists()
