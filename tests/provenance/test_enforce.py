"""Consent enforcement: refusals and their reasons, faces matched against the consent photo, signed records
checked against the catalog, and consent ids hashed for manifests. Fixtures are in conftest.py."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pytest

from facewright.errors import ConsentError, OptionError
from facewright.media.image import read_image
from facewright.provenance.consent import list_consents, revoke, utc_today
from facewright.provenance.enforce import match_faces, require_consent
from facewright.provenance.keys import load_identity, load_trust
from facewright.provenance.mark import consent_id_matches, consent_ids_hash
from tests.provenance.conftest import add


def _refusal(ws, identity, role, **kw) -> str:
    with pytest.raises(ConsentError) as caught:
        require_consent(ws, identity, role, trust=load_trust(), **kw)
    assert caught.value.exit_code == 3
    assert f"facewright consent add --identity {identity} --display-name NAME --role {role} --photo PHOTO" \
           in str(caught.value)
    return str(caught.value)


def test_missing_consent(ws):
    assert "no consent is recorded for identity 'bob'" in _refusal(ws, "bob", "source")


def test_expired_consent(ws, trust, models, man):
    record = add(ws, models, man[0])
    assert require_consent(ws, "alice", "source", trust=trust, today=record.expires) == record  # valid through that day
    later = record.expires + timedelta(days=1)
    assert f"expired on {record.expires}" in _refusal(ws, "alice", "source", today=later)


def test_revoked_consent(ws, trust, models, man):
    record = add(ws, models, man[0])
    revoke(ws, record.id, "she withdrew consent by email", by="Casting Desk", signer=load_identity(), trust=trust)
    message = _refusal(ws, "alice", "source")
    assert "revoked" in message and "she withdrew consent by email" in message


def test_wrong_role(ws, models, man):
    add(ws, models, man[0], role="target")
    assert "covers role target, not source" in _refusal(ws, "alice", "source")


def test_both_covers_each_role(ws, trust, models, man):
    record = add(ws, models, man[0], role="both")
    assert require_consent(ws, "alice", "source", trust=trust) == record == require_consent(ws, "alice", "target",
                                                                                             trust=trust)
    with pytest.raises(OptionError, match="unknown role"):
        require_consent(ws, "alice", "both", trust=trust)


def test_latest_expiry_wins(ws, trust, models, man):
    add(ws, models, man[0], expires=utc_today() + timedelta(days=30))
    later = add(ws, models, man[0], expires=utc_today() + timedelta(days=90))
    add(ws, models, man[0], expires=utc_today() + timedelta(days=900), role="target")
    assert require_consent(ws, "alice", "source", trust=trust) == later


def test_faces_of_the_same_person_pass(ws, trust, models, man):
    photo, faces = man
    record = add(ws, models, photo)
    assert require_consent(ws, "alice", "source", faces, trust=trust) == record


def test_faces_of_another_person_are_refused(ws, trust, models, man, woman, sample):
    add(ws, models, man[0])
    with pytest.raises(ConsentError, match=r"not the person in the consent photo.*6 of 6 faces"):
        require_consent(ws, "alice", "source", woman, trust=trust)
    encoder, detector = models
    group = read_image(sample("multi_face.jpg"))
    with pytest.raises(ConsentError, match="not the person"):
        require_consent(ws, "alice", "source", encoder.embed_many(group, detector.detect(group)), trust=trust)


def test_a_few_faces_of_another_person_are_refused(ws, trust, models, man, woman):
    photo, faces = man
    add(ws, models, photo)
    mixed = np.concatenate([faces, woman[:1]])  # 1 of 8: 12.5% beyond the threshold, over the 5% allowed
    assert match_faces(list_consents(ws)[0].embedding, faces).ok
    with pytest.raises(ConsentError, match="1 of 8 faces"):
        require_consent(ws, "alice", "source", mixed, trust=trust)


def test_catalog_edited_behind_the_signature_is_refused(ws, trust, models, man):
    add(ws, models, man[0], role="source")
    ws.conn.execute("UPDATE consents SET role = 'both'")
    with pytest.raises(ConsentError, match="differs from its signed record"):
        require_consent(ws, "alice", "target", trust=trust)


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
