"""`verify` tells the truth (issue 20): what made it say more than it knew, each case on real sample media.

- a manifest with our name and a forged facewright assertion, signed under a root nobody trusted;
- a watermark lifted off one of our outputs and added to another photo;
- 4 KB appended to a signed MP4 (it still plays), and the same file cut to 1 KB (it does not);
- another C2PA tool's manifest on a photo without a watermark.
"""
from __future__ import annotations

import json
import sqlite3

import c2pa
import cv2
import numpy as np
import pytest
from cryptography import x509
from PIL import Image

from facewright import api
from facewright.cli import main
from facewright.errors import InputError
from facewright.media import read_image, write_image
from facewright.media.kind import MediaKind
from facewright.provenance.ca import common_name
from facewright.provenance.keys import load_identity
from facewright.provenance.label import Label
from facewright.provenance.mark import FrameMarker, MarkPlan, seal

UNTRUSTED_SIGNER, DIFFERENT_CONTENT = 15, 16  # literal: these tests must fail, not break, on the code before them


@pytest.fixture(scope="module")
def marked(sample, tmp_path_factory):
    """A workspace with the astronaut photo marked by `api.mark`: (workspace, marked PNG, MarkResult)."""
    folder = tmp_path_factory.mktemp("truth")
    out = folder / "marked.png"
    return folder / "ws", out, api.mark(sample("astronaut.png"), out, workspace=folder / "ws")


@pytest.fixture(scope="module")
def marked_clip(sample, marked, tmp_path_factory):
    """The 3 s sample clip marked by `api.mark` into the same workspace: (marked MP4, MarkResult)."""
    root, _, _ = marked
    out = tmp_path_factory.mktemp("clip") / "marked.mp4"
    return out, api.mark(sample("single_face.mp4"), out, workspace=root)


def verify_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["verify", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


# --- "verified" only for a trusted signer ------------------------------------------------------------------


def forged(picture: np.ndarray, plan: MarkPlan, folder, *, watermark: bool):
    """`picture` signed with a facewright assertion for `plan` by a new identity named like ours."""
    forger = load_identity(folder / "forger")
    assert common_name(forger.chain_pem) == common_name(load_identity().chain_pem)  # the same display name
    unsigned = folder / "unsigned.png"
    write_image(FrameMarker(plan, MediaKind.IMAGE)(picture) if watermark else picture, unsigned)
    return seal(unsigned, folder / "forged.png", plan, forger), forger


def test_our_name_under_an_untrusted_root_is_not_verified(sample, tmp_path, capsys):
    plan = MarkPlan(Label("ai-generated"))
    out, forger = forged(read_image(sample("coffee.png")), plan, tmp_path, watermark=True)
    code, report = verify_json(capsys, str(out), "--workspace", str(tmp_path / "none"))
    assert (report["outcome"], code) == ("untrusted-signer", UNTRUSTED_SIGNER)
    assert report["watermark"]["payload"] == plan.payload_hex  # manifest and watermark agree: still not enough
    assert report["c2pa"]["state"] == "valid" and report["c2pa"]["trusted"] is False
    leaf = x509.load_pem_x509_certificate(forger.chain_pem)
    assert report["c2pa"]["certificate"]["serial"] == f"{leaf.serial_number:x}"  # tells it from our certificate
    assert any("--anchor" in note for note in report["notes"])

    main(["verify", str(out), "--workspace", str(tmp_path / "none")])
    text = capsys.readouterr().out
    assert "UNTRUSTED-SIGNER (exit 15)" in text and f"serial {leaf.serial_number:x}" in text

    anchor = tmp_path / "forger-root.pem"  # whoever chooses to trust that root gets its word
    anchor.write_bytes(forger.anchor_pem)
    assert main(["verify", str(out), "--anchor", str(anchor), "--workspace", str(tmp_path / "none")]) == 0


def test_forged_manifest_naming_our_output_without_its_watermark_is_not_ours(marked, sample, tmp_path, capsys):
    root, _, result = marked
    plan = MarkPlan(Label("ai-generated"), payload=int(result.payload_hex, 16))  # claims our recorded output
    out, _ = forged(read_image(sample("coffee.png")), plan, tmp_path, watermark=False)
    code, report = verify_json(capsys, str(out), "--workspace", str(root))
    assert (report["outcome"], code) == ("untrusted-signer", UNTRUSTED_SIGNER)
    assert report["watermark"]["found"] is False and "no watermark found" in report["notes"]


# --- copied watermarks -------------------------------------------------------------------------------------


def test_watermark_copied_onto_another_photo_is_different_content(marked, sample, tmp_path, capsys):
    root, out, result = marked
    difference = read_image(out).astype(np.int16) - read_image(sample("astronaut.png"))  # mark and label
    other = cv2.resize(read_image(sample("coffee.png")), difference.shape[1::-1], interpolation=cv2.INTER_AREA)
    copy = write_image(np.clip(other + difference, 0, 255).astype(np.uint8), tmp_path / "copy.png")
    code, report = verify_json(capsys, str(copy), "--workspace", str(root))
    assert report["watermark"]["payload"] == result.payload_hex  # the copy carries our watermark
    assert (report["outcome"], code) == ("different-content", DIFFERENT_CONTENT)
    assert report["record"]["path"] == str(out.resolve())  # the record the watermark points at is named
    assert report["content"]["verdict"] == "different"

    main(["verify", str(copy), "--workspace", str(root)])
    assert "NOT the recorded output's" in capsys.readouterr().out


@pytest.mark.parametrize(("copy", "outcome"), [("itself", "verified"), ("jpeg", "watermark-only"),
                                               ("half size", "watermark-only")])
def test_the_marked_picture_and_its_copies_keep_their_outcome(marked, tmp_path, capsys, copy, outcome):
    root, out, _ = marked
    if copy == "jpeg":
        Image.open(out).convert("RGB").save(path := tmp_path / "copy.jpg", quality=60)
    elif copy == "half size":
        image = Image.open(out).convert("RGB")
        image.resize((image.width // 2, image.height // 2), Image.LANCZOS).save(path := tmp_path / "copy.png")
    else:
        path = out
    code, report = verify_json(capsys, str(path), "--workspace", str(root))
    assert report["outcome"] == outcome
    if copy != "itself":  # a trusted manifest binds the bytes: nothing to compare
        assert report["content"]["verdict"] == "same"


def test_a_record_without_fingerprint_says_it_cannot_compare(marked, sample, tmp_path, capsys):
    root, _, _ = marked
    out = tmp_path / "old.png"
    result = api.mark(sample("chelsea.png"), out, workspace=root)
    with sqlite3.connect(root / "catalog.sqlite") as conn:  # as marked before fingerprints were kept
        conn.execute("UPDATE marks SET fingerprint = NULL WHERE payload = ?", (result.payload_hex,))
    conn.close()
    Image.open(out).convert("RGB").save(tmp_path / "old.jpg", quality=60)
    code, report = verify_json(capsys, str(tmp_path / "old.jpg"), "--workspace", str(root))
    assert (report["outcome"], code) == ("watermark-only", 10)
    assert any("no fingerprint" in note for note in report["notes"])


# --- appended bytes ----------------------------------------------------------------------------------------


def test_bytes_appended_to_a_signed_video_make_it_invalid_not_unreadable(marked, marked_clip, tmp_path, capsys):
    root, _, _ = marked
    out, result = marked_clip
    appended = tmp_path / "appended.mp4"
    appended.write_bytes(out.read_bytes() + np.random.default_rng(0).bytes(4096))
    code, report = verify_json(capsys, str(appended), "--workspace", str(root))
    assert (report["outcome"], code) == ("invalid", 14)
    assert report["c2pa"]["state"] == "invalid" and report["c2pa"]["codes"] == ["asset.unparseable"]
    assert report["watermark"]["payload"] == result.payload_hex and report["watermark"]["frames"] == 72
    assert report["content"]["verdict"] == "same"  # the frames are the recorded output's
    assert any("cannot parse" in note for note in report["notes"])


def test_a_video_cut_to_1_kb_is_still_bad_input(marked_clip, tmp_path, capsys):
    out, _ = marked_clip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(out.read_bytes()[:1024])
    [error] = api.verify([cut], workspace=tmp_path / "none")
    assert isinstance(error, InputError) and error.path == cut
    assert main(["verify", str(cut), "--workspace", str(tmp_path / "none")]) == 2
    assert "damaged or truncated" in capsys.readouterr().err


# --- foreign manifests -------------------------------------------------------------------------------------


def test_another_tools_manifest_is_no_provenance_with_a_note(sample, tmp_path, capsys):
    camera = load_identity(tmp_path / "camera", display_name="Example Camera Co")
    manifest = {"claim_generator_info": [{"name": "examplecam", "version": "4.2"}], "title": "IMG_0001.png",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created",
                     "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}
    signed = tmp_path / "foreign.png"
    info = c2pa.C2paSignerInfo(camera.alg, camera.chain_pem, camera.key_pem, None)
    with c2pa.Builder(manifest) as builder, c2pa.Signer.from_info(info) as signer, \
            open(sample("coffee.png"), "rb") as source, open(signed, "w+b") as dest:
        builder.sign(signer, "image/png", source, dest)
    anchor = tmp_path / "camera-root.pem"
    anchor.write_bytes(camera.anchor_pem)
    for trust in ([], ["--anchor", str(anchor)]):  # trusted or not, it is not a facewright manifest
        code, report = verify_json(capsys, str(signed), *trust, "--workspace", str(tmp_path / "none"))
        assert (report["outcome"], code) == ("no-provenance", 12)
        assert report["c2pa"]["generator"] == "examplecam 4.2" and report["c2pa"]["facewright"] is None
        [note] = [n for n in report["notes"] if "another tool" in n]
        assert "examplecam 4.2" in note and "Example Camera Co" in note
