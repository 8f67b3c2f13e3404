"""`mark` then `verify`, through the API and the CLI: every layer, every outcome and its exit code."""
from __future__ import annotations

import json
import shutil
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image

from facewright import api
from facewright.cli import main
from facewright.errors import ConsentError, UnsupportedFormatError
from facewright.media import probe, read_image, read_video
from facewright.provenance import watermark
from facewright.provenance.c2pa import read_file
from facewright.provenance.consent import utc_today
from facewright.provenance.keys import load_identity
from facewright.provenance.label import Label
from facewright.provenance.mark import FrameMarker, MarkPlan, consent_ids_hash, seal
from facewright.provenance.verify import OUTCOMES
from tests.conftest import file_digest


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory, sample):
    """A workspace with an active consent for the astronaut photo's person."""
    root = tmp_path_factory.mktemp("marks") / "ws"
    record = api.consent_add("eileen", photo=sample("astronaut.png"), role="both", expires=_in(days=60),
                             purpose="testing the provenance layer of facewright", channels=["tests"], workspace=root)
    return root, record


def _in(days: int) -> str:
    return (utc_today() + timedelta(days=days)).isoformat()


@pytest.fixture(scope="module")
def marked_png(ws_root, sample, tmp_path_factory):
    root, record = ws_root
    out = tmp_path_factory.mktemp("out") / "marked.png"
    result = api.mark(sample("astronaut.png"), out, consent=[record.id[:8]], model="test-ae", workspace=root)
    return out, result


def test_marked_image_verifies_on_every_layer(ws_root, marked_png, sample):
    root, record = ws_root
    out, result = marked_png
    assert file_digest(sample("astronaut.png")) == "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
    [report] = api.verify([out], workspace=root)
    assert report.outcome == "verified" and report.exit_code == 0
    assert report.c2pa.state == "trusted"  # our own root is always an anchor
    assert report.watermark.payload_hex == result.payload_hex
    assert report.record["sha256"] == result.sha256 and report.record["model"] == "test-ae"
    [status] = report.consents
    assert (status.consent_id, status.status, status.in_manifest) == (record.id, "active", True)
    assert report.label == "ai-generated"
    manifest = report.c2pa.facewright
    assert manifest["consent"]["hashes"] == consent_ids_hash([record.id], bytes.fromhex(manifest["consent"]["salt"]))
    assert record.id not in report.c2pa.manifest_json  # ids travel hashed only


def test_resaved_jpeg_loses_the_manifest_but_the_watermark_names_the_record(ws_root, marked_png, tmp_path, capsys):
    root, _ = ws_root
    out, result = marked_png
    resaved = tmp_path / "resaved.jpg"
    Image.open(out).convert("RGB").save(resaved, quality=60)
    assert main(["verify", str(resaved), "--json", "--workspace", str(root)]) == OUTCOMES["watermark-only"]
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["state"] == "none"
    assert report["watermark"]["payload"] == result.payload_hex and report["record"]["path"] == str(out.resolve())


def test_one_changed_byte_is_invalid(ws_root, marked_png, tmp_path, capsys):
    root, _ = ws_root
    out, _ = marked_png
    tampered = tmp_path / "tampered.png"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    assert main(["verify", str(tampered), "--workspace", str(root)]) == OUTCOMES["invalid"]
    assert "INVALID" in capsys.readouterr().out


def test_unmarked_file_reports_no_provenance_without_error(sample, tmp_path, capsys):
    assert main(["verify", str(sample("coffee.png")), "--workspace", str(tmp_path / "none")]) == 12
    captured = capsys.readouterr()
    assert "NO-PROVENANCE" in captured.out and captured.err == ""
    assert not (tmp_path / "none").exists()  # verify never creates a workspace


def test_manifest_and_watermark_of_different_outputs_mismatch(sample, tmp_path):
    image = read_image(sample("chelsea.png"))
    plan_a, plan_b = MarkPlan(Label("ai-generated")), MarkPlan(Label("ai-generated"))
    unsigned = tmp_path / "a.png"
    Image.fromarray(FrameMarker(plan_a, "image")(image)).save(unsigned)
    spliced = seal(unsigned, tmp_path / "spliced.png", plan_b, load_identity())  # b's manifest on a's pixels
    [report] = api.verify([spliced], workspace=tmp_path / "none")
    assert report.outcome == "mismatch" and report.exit_code == 13


def test_label_none_is_explicit_and_recorded(ws_root, sample, tmp_path):
    root, _ = ws_root
    out = tmp_path / "unlabelled.png"
    api.mark(sample("astronaut.png"), out, label="none", workspace=root)
    assert read_file(out).facewright["label"] == "none"
    marked = read_image(out)
    assert watermark.psnr(marked, read_image(sample("astronaut.png"))) > 38  # no label drawn, just the mark


def test_marked_video_keeps_frames_timing_and_audio(ws_root, sample, tmp_path):
    root, record = ws_root
    source = sample("single_face.mp4")
    out = tmp_path / "marked.mp4"
    result = api.mark(source, out, label="manipulated", consent=[record.id], workspace=root)
    before, after = probe(source), probe(out)
    assert result.frames == after.video.frames == before.video.frames == 72
    assert after.video.fps == pytest.approx(before.video.fps) and after.audio is not None
    assert after.duration == pytest.approx(before.duration, abs=0.05)
    [report] = api.verify([out], workspace=root)
    assert report.outcome == "verified" and report.label == "manipulated"
    assert report.watermark.frames == 72
    first = next(read_video(out)).image
    assert first[-40:, :200].mean() < next(read_video(source)).image[-40:, :200].mean()  # the dark label box


def test_revoked_consent_cannot_be_used_and_verify_shows_it(sample, tmp_path):
    root = tmp_path / "ws"
    record = api.consent_add("eileen", photo=sample("astronaut.png"), role="source", expires=_in(days=30),
                             purpose="testing revocation in facewright", channels=["tests"], workspace=root)
    out = tmp_path / "before.png"
    api.mark(sample("astronaut.png"), out, consent=[record.id], workspace=root)
    api.consent_revoke(record.id, reason="changed her mind", workspace=root)
    with pytest.raises(ConsentError, match="revoked"):
        api.mark(sample("astronaut.png"), tmp_path / "after.png", consent=[record.id], workspace=root)
    assert not (tmp_path / "after.png").exists()
    [report] = api.verify([out], workspace=root)
    assert [c.status for c in report.consents] == ["revoked"]


def test_mark_refuses_formats_c2pa_cannot_sign_and_keeps_input(sample, tmp_path):
    source = tmp_path / "in.mp4"
    shutil.copy(sample("single_face.mp4"), source)
    digest = file_digest(source)
    with pytest.raises(UnsupportedFormatError):
        api.mark(source, tmp_path / "out.mkv", workspace=tmp_path / "ws")
    assert file_digest(source) == digest and not (tmp_path / "out.mkv").exists()


def test_verify_batch_goes_on_past_a_missing_file(marked_png, ws_root, tmp_path, capsys):
    root, _ = ws_root
    out, _ = marked_png
    code = main(["verify", str(tmp_path / "missing.png"), str(out), "--workspace", str(root)])
    captured = capsys.readouterr()
    assert "VERIFIED" in captured.out and "missing.png" in captured.err
    assert code == 2  # the worst outcome of the batch: a bad input


def test_watermark_pixels_match_the_record_payload(marked_png):
    out, result = marked_png
    found = watermark.detect(np.asarray(Image.open(out).convert("RGB")))
    assert found.payload_hex == result.payload_hex


def test_verify_never_makes_signing_keys(sample, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWRIGHT_KEYS", str(tmp_path / "keys"))
    [report] = api.verify([sample("coffee.png")], workspace=tmp_path / "none")
    assert report.outcome == "no-provenance" and not (tmp_path / "keys").exists()
