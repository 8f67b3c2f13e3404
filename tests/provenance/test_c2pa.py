"""C2PA signing and reading on tiny real media: states, codes, our assertion, actions, ingredients, tampering."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography import x509
from PIL import Image

from facewright import __version__
from facewright.errors import InputError, InvalidMediaError, OutputError, ProvenanceError, UnsupportedFormatError
from facewright.files import sha256_file
from facewright.provenance.c2pa import (
    ASSERTION,
    DIGITAL_SOURCE_TYPE,
    SUPPORTED,
    UNPARSEABLE,
    UNREADABLE,
    C2paReport,
    Certificate,
    ManifestFacts,
    read_file,
    sign_file,
)
from facewright.provenance.ca import ORGANISATION
from facewright.provenance.keys import KEYS_ENV, SigningIdentity, import_identity, load_identity

# Values c2pa's CBOR path would mangle (flat number lists) or reorder, to prove the body comes back verbatim.
BODY = {"watermark": "a3f09c11", "consent": ["5d41402abc4b2a76", "7d793037a0760186"], "salt": "00ff",
        "label": "none", "model": {"name": "test-ae", "sha256": "ab" * 32}, "output": 7,
        "z_bytes": [1, 2, 255], "a_wide": [300, -1, 2.5], "empty": [], "nested": [[1, 2]], "unicode": "Ünï",
        "nothing": None}
UNTRUSTED = "signingCredential.untrusted"


@pytest.fixture
def identity(tmp_path, monkeypatch) -> SigningIdentity:
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "keys"))
    return load_identity()


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """H x W x 3 uint8 RGB test pattern."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    image[..., 2] = 128
    return image


def write_video(path: Path, container: str | None = None) -> Path:
    """16 frames of 64x64 H.264 yuv420p."""
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(16):
            frame = np.roll(gradient(64, 64), index * 4, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    image = Image.fromarray(gradient())
    image.save(folder / "in.png")
    image.save(folder / "in.jpg", quality=90)
    image.save(folder / "in.webp", quality=90)
    return {"png": folder / "in.png", "jpg": folder / "in.jpg", "webp": folder / "in.webp",
            "mp4": write_video(folder / "in.mp4"), "mov": write_video(folder / "in.mov"),
            "mkv": write_video(folder / "in.mkv")}


def signed(media, kind: str, tmp_path: Path, identity: SigningIdentity, **facts) -> Path:
    destination = tmp_path / f"out.{kind}"
    sign_file(media[kind], destination, ManifestFacts(facewright=facts.pop("body", BODY), **facts), identity)
    return destination


def walk_keys(node) -> list[str]:
    if isinstance(node, dict):
        return [key for key, value in node.items() for key in [key, *walk_keys(value)]]
    if isinstance(node, list):
        return [key for item in node for key in walk_keys(item)]
    return []


@pytest.mark.parametrize("kind", ["png", "jpg", "mp4", "mov", "webp"])
def test_signed_file_reads_back_valid_then_trusted(media, tmp_path, identity, kind):
    before = sha256_file(media[kind])
    out = signed(media, kind, tmp_path, identity)
    assert sha256_file(media[kind]) == before  # the source is never touched

    report = read_file(out)
    assert report.state == "valid"
    assert UNTRUSTED in report.codes
    assert report.facewright == BODY
    assert list(report.facewright) == list(BODY)  # key order kept: stored as JSON, not re-encoded
    assert report.generator == f"facewright {__version__}"
    assert "facewright local signer" in report.signer
    leaf = x509.load_pem_x509_certificate(identity.chain_pem)
    assert report.certificate == Certificate(f"CN=facewright local signer, O={ORGANISATION}",
                                             f"CN=facewright local root CA, O={ORGANISATION}",
                                             f"{leaf.serial_number:x}")
    (action,) = report.actions
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert action["softwareAgent"]["name"] == "facewright"
    assert "thumbnail" not in walk_keys(json.loads(report.manifest_json))

    trusted = read_file(out, identity.anchor_pem)
    assert trusted.state == "trusted"
    assert trusted.codes == ()
    assert read_file(out).state == "valid"  # the anchors of one read do not stick to the next


def test_manifest_carries_training_mining_and_title(media, tmp_path, identity):
    report = read_file(signed(media, "png", tmp_path, identity, title="swap of clip"))
    store = json.loads(report.manifest_json)
    active = store["manifests"][store["active_manifest"]]
    assert active["title"] == "swap of clip"
    entries = next(a["data"]["entries"] for a in active["assertions"] if a["label"] == "cawg.training-mining")
    assert set(entries) == {"cawg.ai_inference", "cawg.ai_generative_training", "cawg.ai_training",
                            "cawg.data_mining"}
    assert {entry["use"] for entry in entries.values()} == {"notAllowed"}


def test_parent_makes_an_edit_with_a_hash_only_ingredient(media, tmp_path, identity):
    parent = media["mp4"]
    parent_hash = sha256_file(parent)
    out = signed(media, "mp4", tmp_path, identity, parent=parent, model="test-ae", model_sha256="cd" * 32)
    assert sha256_file(parent) == parent_hash

    report = read_file(out, identity.anchor_pem)
    assert report.state == "trusted"
    # c2pa-rs requires created/opened first: the EDIT intent adds c2pa.opened linked to the parent
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.edited"]
    edited = report.actions[1]
    assert edited["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert edited["softwareAgent"]["org.facewright.model"] == "test-ae"
    assert edited["softwareAgent"]["org.facewright.model_sha256"] == "cd" * 32
    store = json.loads(report.manifest_json)
    (ingredient,) = store["manifests"][store["active_manifest"]]["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["title"] == "input.mp4"  # never the file name, which may name a person
    assert f'"{parent.name}"' not in report.manifest_json
    assert ingredient["format"] == "video/mp4"
    assert ingredient["metadata"]["org.facewright.sha256"] == parent_hash
    assert "thumbnail" not in walk_keys(store)


def _flip(data: bytearray, index: int) -> None:
    data[index] ^= 0x01 if data[index] < 0xF0 else 0x10  # never make a 0xFF, which a JPEG reads as a marker


def flip_media_byte(path: Path) -> Path:
    """Change one byte in the middle of the media data (IDAT, JPEG scan, mdat), outside the manifest."""
    data = bytearray(path.read_bytes())
    if path.suffix == ".png":
        at = data.index(b"IDAT")
        _flip(data, at + 4 + struct.unpack(">I", data[at - 4:at])[0] // 2)
    elif path.suffix == ".jpg":
        start = data.rindex(b"\xff\xda")
        _flip(data, (start + len(data)) // 2)
    else:
        at = data.index(b"mdat")
        _flip(data, at + 4 + (struct.unpack(">I", data[at - 4:at])[0] - 8) // 2)
    damaged = path.with_name(f"damaged{path.suffix}")
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("kind, code", [("png", "assertion.dataHash.mismatch"), ("jpg", "assertion.dataHash.mismatch"),
                                        ("mp4", "assertion.bmffHash.mismatch")])
def test_one_changed_media_byte_is_invalid(media, tmp_path, identity, kind, code):
    report = read_file(flip_media_byte(signed(media, kind, tmp_path, identity)), identity.anchor_pem)
    assert report.state == "invalid"
    assert code in report.codes
    assert report.facewright == BODY  # the manifest itself is intact and still says what it said


def test_changed_signature_label_is_invalid(media, tmp_path, identity):
    out = signed(media, "png", tmp_path, identity)
    out.write_bytes(out.read_bytes().replace(b"c2pa.signature", b"c2pa.signaturX", 1))
    report = read_file(out)
    assert report.state == "invalid"
    assert "claimSignature.missing" in report.codes


def test_undecodable_manifest_store_is_invalid_not_an_error(media, tmp_path, identity):
    out = signed(media, "jpg", tmp_path, identity)
    out.write_bytes(out.read_bytes().replace(b"jumd", b"jumX", 1))  # c2pa raises "expected JUMD"
    assert read_file(out) == C2paReport("invalid", (UNREADABLE,), None, (), None, None, None)


@pytest.mark.parametrize("kind", ["png", "mp4"])
def test_unsigned_file_has_no_manifest(media, kind):
    report = read_file(media[kind])
    assert report.state == "none"
    assert report.facewright is None and report.codes == () and report.manifest_json is None


def test_resaving_a_signed_jpeg_strips_the_manifest(media, tmp_path, identity):
    out = signed(media, "jpg", tmp_path, identity)
    Image.open(out).save(tmp_path / "resaved.jpg", quality=90)
    assert read_file(tmp_path / "resaved.jpg").state == "none"


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_matroska_destination_is_refused(media, tmp_path, identity, suffix):
    destination = tmp_path / f"out{suffix}"
    with pytest.raises(ProvenanceError) as caught:
        sign_file(media["mp4"], destination, ManifestFacts(facewright=BODY), identity)
    assert caught.value.path == destination
    assert caught.value.fix == "write MP4/MOV"
    assert not destination.exists()


def test_destination_of_another_container_is_refused(media, tmp_path, identity):
    with pytest.raises(ProvenanceError, match="image/png"):
        sign_file(media["png"], tmp_path / "out.jpg", ManifestFacts(facewright=BODY), identity)


def test_destination_equal_to_source_is_refused(media, tmp_path, identity):
    source = tmp_path / "same.png"
    source.write_bytes(media["png"].read_bytes())
    before = sha256_file(source)
    with pytest.raises(OutputError):
        sign_file(source, source, ManifestFacts(facewright=BODY), identity)
    assert sha256_file(source) == before


def test_body_that_is_not_json_is_refused(media, tmp_path, identity):
    with pytest.raises(ProvenanceError, match="not plain JSON"):
        signed(media, "png", tmp_path, identity, body={"bad": float("nan")})
    assert not (tmp_path / "out.png").exists()


def test_ed25519_and_imported_identities_sign(media, tmp_path, monkeypatch):
    own = load_identity(tmp_path / "ed", alg="ed25519")
    assert read_file(signed(media, "png", tmp_path, own), own.anchor_pem).state == "trusted"
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "imported"))
    imported = import_identity(own.folder / "signer.pem", own.folder / "signer.key")
    out = tmp_path / "imported.jpg"
    sign_file(media["jpg"], out, ManifestFacts(facewright=BODY), imported)
    assert read_file(out, imported.anchor_pem).state == "trusted"


def test_trust_needs_the_right_anchor(media, tmp_path, identity):
    stranger = load_identity(tmp_path / "stranger")
    report = read_file(signed(media, "png", tmp_path, identity), stranger.anchor_pem)
    assert report.state == "valid" and UNTRUSTED in report.codes


def test_text_file_is_not_media(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are notes, not a picture\n" * 4)
    with pytest.raises(InvalidMediaError) as caught:
        read_file(fake)
    assert caught.value.path == fake
    assert isinstance(caught.value, InputError)


def test_matroska_cannot_be_read(media):
    with pytest.raises(UnsupportedFormatError) as caught:
        read_file(media["mkv"])
    assert caught.value.path == media["mkv"]


def test_container_c2pa_cannot_walk_is_invalid_not_an_error(media, tmp_path, identity):
    # Cut short or with bytes appended, c2pa cannot walk the boxes; verify (not this reader) asks the frames
    # whether it is still a video (test_verify_truth)
    data = signed(media, "mp4", tmp_path, identity).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert read_file(cut) == C2paReport("invalid", (UNPARSEABLE,), None, (), None, None, None)


def test_supported_table_names_mime_types():
    assert SUPPORTED[".mp4"] == "video/mp4" and SUPPORTED[".mov"] == "video/quicktime"
    assert SUPPORTED[".jpg"] == SUPPORTED[".jpeg"] == "image/jpeg" and SUPPORTED[".png"] == "image/png"
    assert ASSERTION == "org.facewright.provenance"
