"""Consent records on real faces: recording, signed files, tampering, revocation and lookup.

The man, woman and models fixtures are in conftest.py; a group photo (multi_face.jpg) shows other people.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from datetime import date, timedelta

import numpy as np
import pytest

from facewright.errors import ConsentError, InputError, NoFaceError, OptionError
from facewright.media.image import write_image
from facewright.provenance import consent as consent_mod
from facewright.provenance.consent import (
    check_use,
    get_consent,
    list_consents,
    parse_expiry,
    revoke,
    utc_today,
    verify_record_file,
)
from facewright.provenance.enforce import require_consent
from facewright.provenance.keys import load_identity
from tests.provenance.conftest import PURPOSE, add


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- recording -----------------------------------------------------------------------------------------------


def test_add_list_show_round_trip(ws, trust, models, man, tmp_path):
    photo, _ = man
    release = tmp_path / "release.pdf"
    release.write_bytes(b"%PDF-1.4 signed release of Alice A.")
    before = _digest(photo)
    record = add(ws, models, photo, release=release, scope="demo", recorded_by="  Casting Desk ")

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
    signed = verify_record_file(folder / "record.json", trust)
    assert signed == record and np.array_equal(signed.embedding, record.embedding)
    assert sorted(p.name for p in folder.iterdir()) == ["photo.png", "record.json"]  # release not copied
    assert record.photo == f"consents/{record.id}/photo.png"
    assert _digest(ws.root / record.photo) == record.photo_sha256 == before == _digest(photo)  # input unchanged
    row = ws.conn.execute("SELECT record_sha256, length(embedding) FROM consents").fetchone()
    assert tuple(row) == (record.record_sha256, 128 * 4)


def test_record_json_layout(ws, models, man):
    record = add(ws, models, man[0])
    doc = json.loads((ws.root / "consents" / record.id / "record.json").read_text())
    assert set(doc) == {"record", "signature", "signer_chain", "alg"}
    assert doc["alg"] == "es256" and doc["signer_chain"].startswith("-----BEGIN CERTIFICATE-----")
    assert doc["record"]["identity"] == "alice" and doc["record"]["expires"] == record.expires.isoformat()
    canonical = json.dumps(doc["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(canonical).hexdigest() == record.record_sha256


def test_default_recorder_is_the_os_user(ws, models, man):
    assert add(ws, models, man[0]).recorded_by == getpass.getuser()


def test_tampered_record_json_fails(ws, trust, models, man):
    record = add(ws, models, man[0])
    path = ws.root / "consents" / record.id / "record.json"
    doc = json.loads(path.read_text())
    doc["record"]["role"] = "both"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConsentError, match="does not verify"):
        verify_record_file(path, trust)
    with pytest.raises(ConsentError, match="does not verify"):
        require_consent(ws, "alice", "source", trust=trust)


def test_replaced_photo_fails(ws, trust, models, man, sample):
    record = add(ws, models, man[0])
    (ws.root / record.photo).write_bytes(sample("single_face.jpg").read_bytes())
    with pytest.raises(ConsentError, match="photo is missing or differs"):
        verify_record_file(ws.root / "consents" / record.id / "record.json", trust)


def test_no_face_photo(ws, models, tmp_path):
    gradient = np.repeat(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], 240, axis=0).repeat(3, axis=2)
    photo = write_image(np.ascontiguousarray(gradient), tmp_path / "gradient.png")
    with pytest.raises(NoFaceError, match="gradient.png: no face found"):
        add(ws, models, photo)
    assert list_consents(ws) == [] and not (ws.root / "consents").exists()


def test_multi_face_photo_names_the_file(ws, models, sample):
    with pytest.raises(InputError, match=r"multi_face.jpg: 5 faces found") as caught:
        add(ws, models, sample("multi_face.jpg"))
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
        add(ws, models, man[0], expires=utc_today() - timedelta(days=1))
    assert list_consents(ws) == []


def test_unknown_role_refused(ws, models, man):
    with pytest.raises(OptionError, match="unknown role 'actor'"):
        add(ws, models, man[0], role="actor")


# --- revocation and lookup -----------------------------------------------------------------------------------


def test_revocation_recorded_and_listed(ws, trust, models, man):
    record = add(ws, models, man[0])
    revoked = revoke(ws, record.id[:8], "withdrawn in writing", by="Casting Desk", signer=load_identity(), trust=trust)
    assert revoked.status() == "revoked" and revoked.revoked_by == "Casting Desk"
    assert list_consents(ws) == [revoked] and list_consents(ws, include_revoked=False) == []
    folder = ws.root / "consents" / record.id
    assert verify_record_file(folder / "record.json", trust) == revoked  # revocation.json read and verified
    doc = json.loads((folder / "revocation.json").read_text())
    assert doc["revocation"]["record_sha256"] == record.record_sha256
    with pytest.raises(OptionError, match="already revoked"):
        revoke(ws, record.id, "again", by="Casting Desk", signer=load_identity(), trust=trust)
    assert get_consent(ws, record.id) == revoked


def test_tampered_revocation_fails(ws, trust, models, man):
    record = add(ws, models, man[0])
    revoke(ws, record.id, "withdrawn in writing", signer=load_identity(), trust=trust)
    path = ws.root / "consents" / record.id / "revocation.json"
    doc = json.loads(path.read_text())
    doc["revocation"]["reason"] = "never mind"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConsentError, match="signature does not verify"):
        verify_record_file(path.with_name("record.json"), trust)


def test_prefix_lookup(ws, models, man, monkeypatch):
    ids = iter([uuid.UUID("abcdef01" + "0" * 24), uuid.UUID("abcdef02" + "0" * 24)])
    monkeypatch.setattr(consent_mod.uuid, "uuid4", lambda: next(ids))
    first, second = add(ws, models, man[0]), add(ws, models, man[0], identity="bob")
    assert get_consent(ws, "abcdef01") == first and get_consent(ws, second.id) == second
    with pytest.raises(ConsentError, match="2 consents have ids starting with abcdef") as caught:
        get_consent(ws, "abcdef")
    assert "facewright consent list" in str(caught.value)
    with pytest.raises(ConsentError, match="no consent has an id starting with 123456"):
        get_consent(ws, "123456")
    with pytest.raises(OptionError, match="at least 6 hex digits"):
        get_consent(ws, "abcde")


def test_catalog_has_the_consents_table(ws):
    columns = {r["name"] for r in ws.conn.execute("PRAGMA table_info(consents)")}
    assert {"identity_id", "record_sha256", "revoked_at", "revoked_by", "revoked_reason", "embedding"} <= columns
    indexes = {r["name"] for r in ws.conn.execute("PRAGMA index_list(consents)")}
    assert "consents_identity" in indexes
