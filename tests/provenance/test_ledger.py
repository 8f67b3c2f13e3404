"""Trusted signers and the consent ledger on real faces: records re-signed by another key, revocations undone,
ledger events deleted or edited, an organisation chain imported, a workspace copied to another machine or made
before the ledger, and two writers at once. Fixtures are in conftest.py (a throw-away keys folder per test)."""
from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from facewright import api
from facewright.errors import ConsentError
from facewright.provenance.adopt import adopt_ledger
from facewright.provenance.consent import canonical_json, get_consent, revoke, verify_record_file
from facewright.provenance.enforce import require_consent
from facewright.provenance.keys import import_identity, keys_dir, load_identity, load_trust, trust_anchor
from facewright.provenance.ledger import EventKind, append, head_path, verified_ledger
from facewright.workspace import Workspace
from tests.provenance.conftest import add

ADOPT = "facewright consent adopt-ledger --workspace"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lines(ws) -> list[str]:
    return (ws.root / "consents" / "ledger.jsonl").read_text().splitlines(keepends=True)


def _write_lines(ws, lines: list[str]) -> None:
    (ws.root / "consents" / "ledger.jsonl").write_text("".join(lines))


def _refused(ws, identity: str, role: str = "source") -> ConsentError:
    with pytest.raises(ConsentError) as caught:
        require_consent(ws, identity, role, trust=load_trust())
    return caught.value


def _intruder(tmp_path: Path, kind: str):
    """(sign(data) -> signature, chain PEM, leaf sha256) of a key that is not this machine's."""
    if kind == "another CA":  # a complete facewright identity, made in another keys folder
        other = load_identity(tmp_path / "other-keys")
        return other.sign, other.chain_pem, other.fingerprint
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return (lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())), cert.public_bytes(serialization.Encoding.PEM),
            cert.fingerprint(hashes.SHA256()).hex())


# --- trusted signers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["self-signed", "another CA"])
def test_a_record_re_signed_by_another_key_is_refused_naming_the_signer(ws, models, man, tmp_path, kind):
    record = add(ws, models, man[0], role="source")
    path = ws.root / "consents" / record.id / "record.json"
    doc = json.loads(path.read_text())
    doc["record"]["role"] = "both"  # widened, re-signed, and the catalog row made to match: a valid signature
    sign, chain, fingerprint = _intruder(tmp_path, kind)
    doc["signature"] = base64.b64encode(sign(canonical_json(doc["record"]))).decode("ascii")
    doc["signer_chain"] = chain.decode("ascii")
    path.write_text(json.dumps(doc))
    ws.conn.execute("UPDATE consents SET role = 'both', record_sha256 = ?",
                    (hashlib.sha256(canonical_json(doc["record"])).hexdigest(),))

    error = _refused(ws, "alice", "target")
    assert error.path == path and "a signer this machine does not trust" in error.message
    assert fingerprint[:16] in error.message
    assert ("CN=intruder" if kind == "self-signed" else "CN=") in error.message
    assert "facewright keys trust ROOT.pem" in error.fix
    with pytest.raises(ConsentError, match="signer this machine does not trust"):
        verify_record_file(path, load_trust())
    with pytest.raises(ConsentError, match="signer this machine does not trust"):
        api.consent_show(record.id, workspace=ws.root)


def test_a_revocation_re_signed_by_another_key_is_refused(ws, models, man, tmp_path):
    record = add(ws, models, man[0])
    revoke(ws, record.id, "withdrawn in writing", signer=load_identity(), trust=load_trust())
    path = ws.root / "consents" / record.id / "revocation.json"
    doc = json.loads(path.read_text())
    sign, chain, fingerprint = _intruder(tmp_path, "self-signed")
    doc["signature"] = base64.b64encode(sign(canonical_json(doc["revocation"]))).decode("ascii")
    doc["signer_chain"] = chain.decode("ascii")
    path.write_text(json.dumps(doc))
    with pytest.raises(ConsentError, match="revocation is signed by CN=intruder") as caught:
        verify_record_file(path.with_name("record.json"), load_trust())
    assert caught.value.path == path and fingerprint[:16] in caught.value.message


def test_keys_import_of_an_organisation_chain_keeps_old_records_valid(ws, models, man, tmp_path):
    local = load_identity()
    old = add(ws, models, man[0])
    org = load_identity(tmp_path / "org")  # stands for an organisation's CA: a root and a leaf it issued
    import_identity(org.folder / "signer.pem", org.folder / "signer.key", anchor=org.folder / "root.pem")

    trust = load_trust()
    kept = x509.load_pem_x509_certificates((keys_dir() / "trusted.pem").read_bytes())
    assert [c.public_bytes(serialization.Encoding.PEM) for c in kept] == [local.anchor_pem]
    assert require_consent(ws, "alice", "source", trust=trust) == old  # signed under the replaced local root
    new = add(ws, models, man[0], identity="bob")  # signed by the organisation's leaf
    assert require_consent(ws, "bob", "source", trust=trust) == new
    assert json.loads((ws.root / "consents" / new.id / "record.json").read_text())["signer_chain"] == \
        org.chain_pem.decode()
    assert verified_ledger(ws, trust).seq == 2

    third = load_identity(tmp_path / "third")  # trusted by nobody here: still refused after the import
    import_identity(third.folder / "signer.pem", third.folder / "signer.key", folder=tmp_path / "elsewhere")
    assert not trust.trusts(third.chain_pem) and trust.trusts(local.chain_pem) and trust.trusts(org.chain_pem)


# --- the ledger ----------------------------------------------------------------------------------------------


def test_a_valid_ledger_after_several_adds_and_revokes_is_accepted(ws, trust, models, man):
    alice = add(ws, models, man[0])
    bob = add(ws, models, man[0], identity="bob")
    revoke(ws, bob.id, "withdrawn by email", signer=load_identity(), trust=trust)
    carol = add(ws, models, man[0], identity="carol", role="both")
    revoke(ws, alice.id, "withdrawn in person", signer=load_identity(), trust=trust)
    alice_again = add(ws, models, man[0])

    ledger = verified_ledger(ws, trust)
    assert [(e.seq, e.kind, e.consent_id) for e in ledger.events] == [
        (1, "add", alice.id), (2, "add", bob.id), (3, "revoke", bob.id), (4, "add", carol.id),
        (5, "revoke", alice.id), (6, "add", alice_again.id)]
    assert [e.prev for e in ledger.events[1:]] == [e.hash for e in ledger.events[:-1]]
    folder = ws.root / "consents"
    assert ledger.events[2].sha256 == _sha256(folder / bob.id / "revocation.json")
    assert ledger.events[3].sha256 == _sha256(folder / carol.id / "record.json")
    head = json.loads(head_path(trust, ledger.workspace, ws.root).read_text())  # kept with the keys
    assert (head["seq"], head["hash"], head["folder"]) == (6, ledger.events[-1].hash, str(ws.root.resolve()))
    assert head["revoked"] == {bob.id: ledger.events[2].at, alice.id: ledger.events[4].at}
    assert require_consent(ws, "alice", "source", trust=trust) == alice_again
    assert require_consent(ws, "carol", "target", trust=trust) == carol
    assert "withdrawn by email" in _refused(ws, "bob").message


def test_another_workspaces_unreadable_head_does_not_stop_this_one_but_its_own_does(ws, trust, models, man):
    alice = add(ws, models, man[0])
    (trust.heads / "0123456789abcdef-0123456789abcdef.json").write_text('{"workspace": "older format"}')
    assert require_consent(ws, "alice", "source", trust=trust) == alice
    ledger = verified_ledger(ws, trust)
    head_path(trust, ledger.workspace, ws.root).write_text("not json")
    assert "unreadable consent-ledger head" in _refused(ws, "alice").message


def test_an_undone_revocation_is_refused(ws, trust, models, man):
    record = add(ws, models, man[0])
    revoked = revoke(ws, record.id, "she withdrew consent", signer=load_identity(), trust=trust)
    (ws.root / "consents" / record.id / "revocation.json").unlink()
    ws.conn.execute("UPDATE consents SET revoked_at = NULL, revoked_by = NULL, revoked_reason = NULL")
    assert get_consent(ws, record.id).status() == "active"  # the catalog and the files no longer say otherwise

    error = _refused(ws, "alice")
    assert error.message == (f"consent {record.id} was revoked on {revoked.revoked_at[:10]} according to the "
                             "ledger, but its revocation record is missing")
    assert error.path == ws.root / "consents" / record.id / "revocation.json" and error.exit_code == 3
    with pytest.raises(ConsentError, match="revocation record is missing"):
        api.consent_show(record.id, workspace=ws.root)


def test_deleting_the_last_ledger_event_is_refused(ws, trust, models, man):
    add(ws, models, man[0])
    bob = add(ws, models, man[0], identity="bob")
    revoke(ws, bob.id, "withdrawn", signer=load_identity(), trust=trust)
    _write_lines(ws, _lines(ws)[:-1])  # the revocation's event goes; its chain stays intact
    (ws.root / "consents" / bob.id / "revocation.json").unlink()
    ws.conn.execute("UPDATE consents SET revoked_at = NULL, revoked_by = NULL, revoked_reason = NULL")
    for identity in ("alice", "bob"):  # every consent check reads the whole ledger
        error = _refused(ws, identity)
        assert error.message.startswith("the consent ledger ends at event 2, but this machine recorded 3 events")
        assert "restore the workspace's consents/ folder" in error.fix


def test_a_deleted_ledger_is_refused_and_not_rebuilt(ws, trust, models, man):
    add(ws, models, man[0])
    (ws.root / "consents" / "ledger.jsonl").unlink()
    message = _refused(ws, "alice").message
    assert message.startswith("the consent ledger is missing, though this machine recorded one with 1 event(s)")
    with pytest.raises(ConsentError, match="it was deleted"):
        adopt_ledger(ws, signer=load_identity(), trust=trust)


@pytest.mark.parametrize(("tamper", "message"), [
    ("edit", "event 2 of the consent ledger was edited: its hash does not match its contents"),
    ("edit and re-hash", "the consent ledger's event 2's signature does not verify"),
    ("delete", "the consent ledger's chain is broken at line 2: event 3 does not follow the event before it"),
])
def test_tampering_with_an_event_in_the_middle_is_refused(ws, trust, models, man, tamper, message):
    add(ws, models, man[0])
    bob = add(ws, models, man[0], identity="bob")
    revoke(ws, bob.id, "withdrawn", signer=load_identity(), trust=trust)
    lines = _lines(ws)
    event = json.loads(lines[1])
    event["at"] = "2020-01-01T00:00:00+00:00"
    if tamper == "edit and re-hash":
        body = {k: v for k, v in event.items() if k not in ("hash", "signature", "signer_chain", "alg")}
        event["hash"] = hashlib.sha256(canonical_json(body)).hexdigest()
    lines[1:2] = [] if tamper == "delete" else [json.dumps(event, sort_keys=True) + "\n"]
    _write_lines(ws, lines)
    error = _refused(ws, "alice")
    assert message in error.message and error.path == ws.root / "consents" / "ledger.jsonl"


def test_an_emptied_ledger_is_refused_and_a_missing_one_blocks_new_consents(ws, trust, models, man):
    record = add(ws, models, man[0])
    _write_lines(ws, [])
    assert "the consent ledger is empty" in _refused(ws, "alice").message
    (ws.root / "consents" / "ledger.jsonl").unlink()
    shutil.rmtree(keys_dir() / "ledgers")  # as if the consent were older than the ledger: only adopting brings it in
    with pytest.raises(ConsentError, match="has consents but no consent ledger"):
        add(ws, models, man[0], identity="bob")
    assert ADOPT in _refused(ws, "alice").fix
    assert [c.id for c in api.consent_list(workspace=ws.root)] == [record.id]


# --- copies, older workspaces and adopting -------------------------------------------------------------------


def test_a_copied_workspace_without_a_head_is_refused_until_adopted(ws, trust, models, man, tmp_path, monkeypatch):
    record = add(ws, models, man[0])
    root_a = keys_dir() / "root.pem"
    copy = tmp_path / "elsewhere" / "ws"
    shutil.copytree(ws.root, copy)
    monkeypatch.setenv("FACEWRIGHT_KEYS", str(tmp_path / "keys-b"))  # another machine: its own identity
    load_identity()
    with Workspace.open(copy) as moved:
        with pytest.raises(ConsentError, match="signer this machine does not trust"):
            adopt_ledger(moved, signer=load_identity(), trust=load_trust())  # machine A's root is not trusted here
        trust_anchor(root_a)
        error = _refused(moved, "alice")
        assert "this machine keeps no head for this workspace's consent ledger of 1 event(s)" in error.message
        assert error.fix.endswith(f"{ADOPT} {copy}")

        adopted = api.consent_adopt_ledger(workspace=copy)
        assert (adopted.events, adopted.built, adopted.appended) == (1, False, 0) and adopted.head.is_file()
        assert require_consent(moved, "alice", "source", trust=load_trust()) == record
        bob = add(moved, models, man[0], identity="bob")  # signed by machine B's key, trusted here
        assert require_consent(moved, "bob", "source", trust=load_trust()) == bob


def test_a_copy_on_this_machine_keeps_its_own_head_and_every_revocation(ws, trust, models, man, tmp_path):
    alice = add(ws, models, man[0])
    backup = tmp_path / "backup"
    shutil.copytree(ws.root, backup)  # made while alice's consent was active
    revoked = revoke(ws, alice.id, "withdrawn", signer=load_identity(), trust=trust)
    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy)
    with Workspace.open(copy) as later:  # a copy of the current state gets its own head and goes its own way
        bob = add(later, models, man[0], identity="bob")
        assert require_consent(later, "bob", "source", trust=trust) == bob
    assert verified_ledger(ws, trust).seq == 2 and "withdrawn" in _refused(ws, "alice").message

    with Workspace.open(backup) as older:  # the copy from before the revocation does not bring alice back
        error = _refused(older, "alice")
        where = min(str(ws.root.resolve()), str(copy.resolve()))  # both hold the revocation: the first is named
        assert error.message == (f"consent {alice.id} was revoked on {revoked.revoked_at[:10]} in the workspace at "
                                 f"{where}, as this machine recorded, but this workspace's ledger does not say so")
        with pytest.raises(ConsentError, match="was revoked on"):
            adopt_ledger(older, signer=load_identity(), trust=trust)


def test_a_workspace_made_before_the_ledger_is_adopted_from_its_signed_records(ws, trust, models, man):
    alice = add(ws, models, man[0])
    bob = add(ws, models, man[0], identity="bob")
    revoke(ws, bob.id, "withdrawn", signer=load_identity(), trust=trust)
    (ws.root / "consents" / "ledger.jsonl").unlink()  # what a workspace of an earlier facewright looks like
    shutil.rmtree(keys_dir() / "ledgers")
    error = _refused(ws, "alice")
    assert "has consents but no consent ledger: it was made before facewright kept one" in error.message
    assert f"{ADOPT} {ws.root}" in error.fix

    adopted = adopt_ledger(ws, signer=load_identity(), trust=trust)
    assert (adopted.events, adopted.built) == (3, True)
    events = [(e.kind, e.consent_id) for e in verified_ledger(ws, trust).events]  # by time; ids order ties
    assert sorted(events) == sorted([("add", alice.id), ("add", bob.id), ("revoke", bob.id)])
    assert events.index(("add", bob.id)) < events.index(("revoke", bob.id))
    assert require_consent(ws, "alice", "source", trust=trust) == alice
    assert "withdrawn" in _refused(ws, "bob").message


def test_a_revocation_the_ledger_cannot_take_is_recorded_and_adopted(ws, trust, models, man):
    record = add(ws, models, man[0])
    shutil.rmtree(keys_dir() / "ledgers")  # the head is gone: the ledger takes no event until adopted
    with pytest.raises(ConsentError, match=f"consent {record.id} is revoked .* but the consent ledger could not"):
        revoke(ws, record.id, "withdrawn", signer=load_identity(), trust=trust)
    assert get_consent(ws, record.id).status() == "revoked"  # the withdrawal stands
    adopted = adopt_ledger(ws, signer=load_identity(), trust=trust)
    assert (adopted.events, adopted.appended) == (2, 1)
    assert verified_ledger(ws, trust).events[-1].kind == EventKind.REVOKE
    assert "revoked" in _refused(ws, "alice").message


# --- concurrency ---------------------------------------------------------------------------------------------


def _append_many(root: str, keys: str, worker: int, count: int) -> None:
    with Workspace.open(root) as ws:
        for i in range(count):
            file = ws.root / "consents" / f"w{worker}-{i}.json"
            file.write_text(f"{worker} {i}")
            append(ws, EventKind.ADD, f"{worker:02d}{i:030d}", file, f"2026-01-01T00:00:{i:02d}+00:00",
                   signer=load_identity(Path(keys)), trust=load_trust(Path(keys)), may_start=True)


def test_two_processes_appending_at_once_keep_one_chain(ws, trust):
    (ws.root / "consents").mkdir()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(ws.root), str(keys_dir()), w, 6)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    ledger = verified_ledger(ws, trust)  # chain, signatures and head all agree
    assert [e.seq for e in ledger.events] == list(range(1, 13)) and len({e.consent_id for e in ledger.events}) == 12
