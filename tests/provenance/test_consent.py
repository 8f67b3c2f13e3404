"""Consent records on real faces: one man (single_face.mp4) gives consent; a woman (WolfgangLanger_Pexels.mp4)
and a group photo (multi_face.jpg) are other people. Models and embeddings are shared per module."""
from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from datetime import date, timedelta

import numpy as np
import pytest

from facewright.errors import ConsentError, InputError, NoFaceError, OptionError
from facewright.faces.detect import create_detector
from facewright.faces.identity import IdentityEncoder
from facewright.media.image import read_image, write_image
from facewright.media.video import VideoReader
from facewright.provenance import consent as consent_mod
from facewright.provenance.consent import (
    add_consent,
    check_use,
    consent_id_matches,
    consent_ids_hash,
    get_consent,
    list_consents,
    match_faces,
    parse_expiry,
    require_consent,
    revoke,
    utc_today,
    verify_record_file,
)
from facewright.workspace import Workspace

PURPOSE = "short film for a student festival"


@pytest.fixture(scope="module")
def models():
    with create_detector(consent_mod.DETECTOR) as detector:
        yield IdentityEncoder(), detector


def _frames(path, every: int, count: int) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [f.image for f in reader if f.index % every == 0][:count]


def _embed(models, images) -> np.ndarray:
    encoder, detector = models
    return np.stack([encoder.embed(image, detector.detect(image)[0]) for image in images])


@pytest.fixture(scope="module")
def man(sample, models, tmp_path_factory):
    """(consent photo: frame 0 as PNG, embeddings of 7 later frames of the same man)."""
    frames = _frames(sample("single_face.mp4"), every=10, count=8)
    photo = write_image(frames[0], tmp_path_factory.mktemp("photos") / "man.png")
    return photo, _embed(models, frames[1:])


@pytest.fixture(scope="module")
def woman(sample, models):
    """Embeddings of 6 frames of another person."""
    return _embed(models, _frames(sample("WolfgangLanger_Pexels.mp4"), every=40, count=6))


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWRIGHT_KEYS", str(tmp_path / "keys"))
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


def _add(ws, models, photo, **overrides):
    encoder, detector = models
    fields = dict(identity="alice", display_name="Alice A.", role="source", purpose=PURPOSE,
                  channels=["film festival", "youtube"], expires=utc_today() + timedelta(days=365), photo=photo)
    return add_consent(ws, **fields | overrides, encoder=encoder, detector=detector)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- recording -----------------------------------------------------------------------------------------------


def test_add_list_show_round_trip(ws, models, man, tmp_path):
    photo, _ = man
    release = tmp_path / "release.pdf"
    release.write_bytes(b"%PDF-1.4 signed release of Alice A.")
    before = _digest(photo)
    record = _add(ws, models, photo, release=release, scope="demo", recorded_by="  Casting Desk ")

    assert len(record.id) == 32 and int(record.id, 16) >= 0
    assert record.channels == ("film festival", "youtube") and record.scope == "demo"
    assert record.recorded_by == "Casting Desk" and record.release_sha256 == _digest(release)
    assert record.status() == "active" and record.covers("source") and not record.covers("target")
    assert list_consents(ws) == [record] and list_consents(ws, "alice") == [record]
    assert list_consents(ws, "nobody") == []
    shown = get_consent(ws, record.id[:6].upper())
    assert shown == record and np.array_equal(shown.embedding, record.embedding)
    assert shown.embedding.shape == (128,) and shown.embedding.dtype == np.float32

    folder = ws.root / "consents" / record.id
    signed = verify_record_file(folder / "record.json")
    assert signed == record and np.array_equal(signed.embedding, record.embedding)
    assert sorted(p.name for p in folder.iterdir()) == ["photo.png", "record.json"]  # release not copied
    assert record.photo == f"consents/{record.id}/photo.png"
    assert _digest(ws.root / record.photo) == record.photo_sha256 == before == _digest(photo)  # input unchanged
    row = ws.conn.execute("SELECT record_sha256, length(embedding) FROM consents").fetchone()
    assert tuple(row) == (record.record_sha256, 128 * 4)


def test_record_json_layout(ws, models, man):
    record = _add(ws, models, man[0])
    doc = json.loads((ws.root / "consents" / record.id / "record.json").read_text())
    assert set(doc) == {"record", "signature", "signer_chain", "alg"}
    assert doc["alg"] == "es256" and doc["signer_chain"].startswith("-----BEGIN CERTIFICATE-----")
    assert doc["record"]["identity"] == "alice" and doc["record"]["expires"] == record.expires.isoformat()
    canonical = json.dumps(doc["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(canonical).hexdigest() == record.record_sha256


def test_default_recorder_is_the_os_user(ws, models, man):
    assert _add(ws, models, man[0]).recorded_by == getpass.getuser()


def test_tampered_record_json_fails(ws, models, man):
    record = _add(ws, models, man[0])
    path = ws.root / "consents" / record.id / "record.json"
    doc = json.loads(path.read_text())
    doc["record"]["role"] = "both"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConsentError, match="does not verify"):
        verify_record_file(path)
    with pytest.raises(ConsentError, match="does not verify"):
        require_consent(ws, "alice", "source")


def test_replaced_photo_fails(ws, models, man, sample):
    record = _add(ws, models, man[0])
    (ws.root / record.photo).write_bytes(sample("single_face.jpg").read_bytes())
    with pytest.raises(ConsentError, match="photo is missing or differs"):
        verify_record_file(ws.root / "consents" / record.id / "record.json")


def test_catalog_edited_behind_the_signature_is_refused(ws, models, man):
    _add(ws, models, man[0], role="source")
    ws.conn.execute("UPDATE consents SET role = 'both'")
    with pytest.raises(ConsentError, match="differs from its signed record"):
        require_consent(ws, "alice", "target")


def test_no_face_photo(ws, models, tmp_path):
    gradient = np.repeat(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], 240, axis=0).repeat(3, axis=2)
    photo = write_image(np.ascontiguousarray(gradient), tmp_path / "gradient.png")
    with pytest.raises(NoFaceError, match="gradient.png: no face found"):
        _add(ws, models, photo)
    assert list_consents(ws) == [] and not (ws.root / "consents").exists()


def test_multi_face_photo_names_the_file(ws, models, sample):
    with pytest.raises(InputError, match=r"multi_face.jpg: 5 faces found") as caught:
        _add(ws, models, sample("multi_face.jpg"))
    assert not isinstance(caught.value, NoFaceError) and "fix: crop the photo" in str(caught.value)
    assert list_consents(ws) == []


@pytest.mark.parametrize(("purpose", "channels"), [
    ("explicit content for a subscription site", ["web"]),
    ("a porn parody of a famous film", ["web"]),
    ("Nude scene in a short film", ["festival"]),
    ("short film for a student festival", ["OnlyFans"]),
    ("SEXUAL content for a private collection", ["private"]),
])
def test_sexual_purpose_refused(purpose, channels):
    with pytest.raises(ConsentError, match="facewright does not make sexual content"):
        check_use(purpose, channels)


def test_ordinary_purposes_pass_the_guard():
    purpose, channels = check_use("  film  with her explicit permission ", ["Essex film club", " ", "Essex film club"])
    assert purpose == "film with her explicit permission" and channels == ("Essex film club",)


@pytest.mark.parametrize(("purpose", "channels", "match"), [
    ("film", ["web"], "at least 10 characters"),
    (PURPOSE, [], "no channel given"),
    (PURPOSE, ["  "], "no channel given"),
])
def test_purpose_and_channels_required(purpose, channels, match):
    with pytest.raises(OptionError, match=match):
        check_use(purpose, channels)


def test_expiry_rules():
    today = date(2024, 2, 29)
    assert parse_expiry("2024-03-01", today) == date(2024, 3, 1)
    assert parse_expiry(date(2034, 2, 28), today) == date(2034, 2, 28)  # 10 years from a 29 February
    for bad, match in [("2024-02-29", "not in the future"), ("2020-01-01", "not in the future"),
                       ("2034-03-01", "more than 10 years"), ("next year", "not a date")]:
        with pytest.raises(OptionError, match=match):
            parse_expiry(bad, today)


def test_past_expiry_refused_before_anything_is_written(ws, models, man):
    with pytest.raises(OptionError, match="not in the future"):
        _add(ws, models, man[0], expires=utc_today() - timedelta(days=1))
    assert list_consents(ws) == []


def test_unknown_role_refused(ws, models, man):
    with pytest.raises(OptionError, match="unknown role 'actor'"):
        _add(ws, models, man[0], role="actor")


# --- enforcement ---------------------------------------------------------------------------------------------


def _refusal(ws, identity, role, **kw) -> str:
    with pytest.raises(ConsentError) as caught:
        require_consent(ws, identity, role, **kw)
    assert caught.value.exit_code == 3
    assert f"facewright consent add --identity {identity} --display-name NAME --role {role} --photo PHOTO" \
           in str(caught.value)
    return str(caught.value)


def test_missing_consent(ws):
    assert "no consent is recorded for identity 'bob'" in _refusal(ws, "bob", "source")


def test_expired_consent(ws, models, man):
    record = _add(ws, models, man[0])
    assert require_consent(ws, "alice", "source", today=record.expires) == record  # valid through that day
    later = record.expires + timedelta(days=1)
    assert f"expired on {record.expires}" in _refusal(ws, "alice", "source", today=later)


def test_revoked_consent(ws, models, man):
    record = _add(ws, models, man[0])
    revoke(ws, record.id, "she withdrew consent by email", by="Casting Desk")
    message = _refusal(ws, "alice", "source")
    assert "revoked" in message and "she withdrew consent by email" in message


def test_wrong_role(ws, models, man):
    _add(ws, models, man[0], role="target")
    assert "covers role target, not source" in _refusal(ws, "alice", "source")


def test_both_covers_each_role(ws, models, man):
    record = _add(ws, models, man[0], role="both")
    assert require_consent(ws, "alice", "source") == record == require_consent(ws, "alice", "target")
    with pytest.raises(OptionError, match="unknown role"):
        require_consent(ws, "alice", "both")


def test_latest_expiry_wins(ws, models, man):
    _add(ws, models, man[0], expires=utc_today() + timedelta(days=30))
    later = _add(ws, models, man[0], expires=utc_today() + timedelta(days=90))
    _add(ws, models, man[0], expires=utc_today() + timedelta(days=900), role="target")
    assert require_consent(ws, "alice", "source") == later


def test_faces_of_the_same_person_pass(ws, models, man):
    photo, faces = man
    record = _add(ws, models, photo)
    assert require_consent(ws, "alice", "source", faces) == record


def test_faces_of_another_person_are_refused(ws, models, man, woman, sample):
    _add(ws, models, man[0])
    with pytest.raises(ConsentError, match=r"not the person in the consent photo.*6 of 6 faces"):
        require_consent(ws, "alice", "source", woman)
    encoder, detector = models
    group = read_image(sample("multi_face.jpg"))
    with pytest.raises(ConsentError, match="not the person"):
        require_consent(ws, "alice", "source", encoder.embed_many(group, detector.detect(group)))


def test_a_few_faces_of_another_person_are_refused(ws, models, man, woman):
    photo, faces = man
    _add(ws, models, photo)
    mixed = np.concatenate([faces, woman[:1]])  # 1 of 8: 12.5% beyond the threshold, over the 5% allowed
    assert match_faces(list_consents(ws)[0].embedding, faces).ok
    with pytest.raises(ConsentError, match="1 of 8 faces"):
        require_consent(ws, "alice", "source", mixed)


# --- revocation and lookup -----------------------------------------------------------------------------------


def test_revocation_recorded_and_listed(ws, models, man):
    record = _add(ws, models, man[0])
    revoked = revoke(ws, record.id[:8], "withdrawn in writing", by="Casting Desk")
    assert revoked.status() == "revoked" and revoked.revoked_by == "Casting Desk"
    assert list_consents(ws) == [revoked] and list_consents(ws, include_revoked=False) == []
    folder = ws.root / "consents" / record.id
    assert verify_record_file(folder / "record.json") == revoked  # revocation.json read and verified
    doc = json.loads((folder / "revocation.json").read_text())
    assert doc["revocation"]["record_sha256"] == record.record_sha256
    with pytest.raises(OptionError, match="already revoked"):
        revoke(ws, record.id, "again", by="Casting Desk")
    assert get_consent(ws, record.id) == revoked


def test_tampered_revocation_fails(ws, models, man):
    record = _add(ws, models, man[0])
    revoke(ws, record.id, "withdrawn in writing")
    path = ws.root / "consents" / record.id / "revocation.json"
    doc = json.loads(path.read_text())
    doc["revocation"]["reason"] = "never mind"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConsentError, match="signature does not verify"):
        verify_record_file(path.with_name("record.json"))


def test_prefix_lookup(ws, models, man, monkeypatch):
    ids = iter([uuid.UUID("abcdef01" + "0" * 24), uuid.UUID("abcdef02" + "0" * 24)])
    monkeypatch.setattr(consent_mod.uuid, "uuid4", lambda: next(ids))
    first, second = _add(ws, models, man[0]), _add(ws, models, man[0], identity="bob")
    assert get_consent(ws, "abcdef01") == first and get_consent(ws, second.id) == second
    with pytest.raises(ConsentError, match="2 consents have ids starting with abcdef") as caught:
        get_consent(ws, "abcdef")
    assert "facewright consent list" in str(caught.value)
    with pytest.raises(ConsentError, match="no consent has an id starting with 123456"):
        get_consent(ws, "123456")
    with pytest.raises(OptionError, match="at least 6 hex digits"):
        get_consent(ws, "abcde")


# --- pure functions ------------------------------------------------------------------------------------------


def _at(distances) -> np.ndarray:
    """Embeddings at the given L2 distances from the origin, each along its own axis."""
    faces = np.zeros((len(distances), 128), np.float32)
    faces[np.arange(len(distances)), np.arange(len(distances)) % 128] = distances
    return faces


def test_match_faces_on_arrays():
    origin = np.zeros(128, np.float32)
    close = match_faces(origin, _at([0.1, 0.2, 0.5]))
    assert close.ok and close.faces == 3 and close.outside == 0 and close.median_distance == pytest.approx(0.2)
    assert close.centroid_distance == pytest.approx(np.sqrt(0.1**2 + 0.2**2 + 0.5**2) / 3)
    assert not match_faces(origin, _at([0.61] * 4)).ok
    assert match_faces(origin, _at([0.1] * 19 + [0.9])).ok  # 1 of 20 = 5%: allowed
    two_of_twenty = match_faces(origin, _at([0.1] * 18 + [0.9] * 2))
    assert not two_of_twenty.ok and two_of_twenty.outside == 2
    far_outlier = match_faces(origin, _at([0.1] * 19 + [100.0]))  # 5% outside, but it drags the centroid away
    assert far_outlier.outside == 1 and far_outlier.centroid_distance > 0.6 and not far_outlier.ok
    with pytest.raises(ValueError):
        match_faces(origin, np.zeros((0, 128), np.float32))
    with pytest.raises(ValueError):
        match_faces(origin, np.zeros((2, 64), np.float32))


def test_consent_ids_hash():
    salt, ids = bytes(range(16)), ["ab" * 16, "cd" * 16]
    hashes = consent_ids_hash(ids, salt)
    assert hashes == [hashlib.sha256(salt + i.encode()).hexdigest() for i in ids]
    assert consent_ids_hash(ids, bytes(range(1, 17))) != hashes
    assert consent_id_matches(hashes[0], ids[0], salt) and not consent_id_matches(hashes[0], ids[1], salt)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        consent_ids_hash(ids, b"short")


def test_catalog_has_the_consents_table(ws):
    columns = {r["name"] for r in ws.conn.execute("PRAGMA table_info(consents)")}
    assert {"identity_id", "record_sha256", "revoked_at", "revoked_by", "revoked_reason", "embedding"} <= columns
    indexes = {r["name"] for r in ws.conn.execute("PRAGMA index_list(consents)")}
    assert "consents_identity" in indexes
