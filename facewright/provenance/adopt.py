"""Adopting a consent ledger (`facewright consent adopt-ledger`): an explicit step, never taken on its own.

- A workspace copied or moved here from another machine (or after a new keys folder): its ledger is checked
  (chain, trusted signatures, every consent's files against it) and its head recorded with the keys here. (A
  copy made on this machine needs no adopting: its ledger's workspace id is known, see provenance.ledger.)
- A workspace made before facewright kept a ledger: the ledger is built from the signed records, provided each
  one verifies against the trust anchors and agrees with the catalog.
- A ledger ahead of the head recorded here (a write interrupted after the ledger, before the head): checked
  the same way, and the head moves forward.
A revocation signed while the ledger could not take it (`revoke` still records it) gets its event now. Refused:
a ledger behind or beside the head recorded here, a missing ledger where this machine recorded one, and a
consent that a ledger kept here revoked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facewright.errors import ConsentError
from facewright.files import sha256_file
from facewright.provenance.consent import CONSENTS, ConsentRecord, list_consents
from facewright.provenance.enforce import check_files, check_recorded, check_revocations_here
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.ledger import (
    EventKind,
    Ledger,
    check_head,
    extend,
    head_of_folder,
    locked,
    missing_ledger,
    read_ledger,
    stored_head,
    write_head,
)
from facewright.provenance.trust import Trust
from facewright.workspace import Workspace

Item = tuple[EventKind, str, str, str]  # (kind, consent id, sha256 of the file, time): an event to append


@dataclass(frozen=True)
class Adopted:
    workspace: str  # the ledger's workspace id ("" when there is nothing to adopt)
    events: int  # in the ledger now
    built: bool  # made now from the signed records (a workspace older than the ledger)
    appended: int  # events added now: all of them when built, else revocations the ledger lacked
    head: Path | None  # where the head was recorded; None when there are no consents


def adopt_ledger(ws: Workspace, *, signer: SigningIdentity, trust: Trust) -> Adopted:
    """Check this workspace's consent ledger (or build it from the signed records) and record its head here."""
    with locked(ws, exclusive=True):
        consents = list_consents(ws)
        ledger = read_ledger(ws, trust)
        if ledger is None and not consents:
            return Adopted("", 0, False, 0, None)
        if ledger is None:
            if head_of_folder(ws, trust):  # this machine kept a ledger for this folder: it was deleted
                raise missing_ledger(ws, trust)
            items = sorted((i for c in consents for i in _from_records(ws, c, trust)), key=lambda i: i[3])
            ledger = Ledger.start()
        else:
            head = stored_head(trust, ledger.workspace, ws.root)
            if head is not None and not _contains(ledger, head.seq, head.hash):
                check_head(ws, ledger, trust)  # raises, saying how the ledger falls short of the head
            items = [i for c in consents for i in _unledgered(ws, c, ledger, trust)]
        built = not ledger.events
        adopted = extend(ws, ledger, items, signer, trust) if items else ledger
        return Adopted(adopted.workspace, adopted.seq, built, len(items), write_head(ws, adopted, trust))


def _contains(ledger: Ledger, seq: int, hash: str) -> bool:
    return 1 <= seq <= ledger.seq and ledger.events[seq - 1].hash == hash


def _unledgered(ws: Workspace, consent: ConsentRecord, ledger: Ledger, trust: Trust) -> list[Item]:
    """Check one consent against the ledger; its revocation's event if the ledger lacks it."""
    signed = check_recorded(ws, consent, trust, ledger, unledgered_revocation=True)
    _same_state(ws, consent, signed)
    if signed.revoked_at is None or ledger.find(EventKind.REVOKE, consent.id):
        return []
    return [(EventKind.REVOKE, consent.id, sha256_file(_folder(ws, consent) / "revocation.json"), signed.revoked_at)]


def _from_records(ws: Workspace, consent: ConsentRecord, trust: Trust) -> list[Item]:
    """The events of one consent of a workspace older than the ledger, from its checked signed files."""
    signed = check_files(ws, consent, trust)
    _same_state(ws, consent, signed)
    check_revocations_here(ws, consent, trust, revoked=signed.revoked_at is not None)
    folder = _folder(ws, consent)
    items: list[Item] = [(EventKind.ADD, consent.id, sha256_file(folder / "record.json"), consent.recorded_at)]
    if signed.revoked_at is not None:
        items.append((EventKind.REVOKE, consent.id, sha256_file(folder / "revocation.json"), signed.revoked_at))
    return items


def _same_state(ws: Workspace, consent: ConsentRecord, signed: ConsentRecord) -> None:
    """The catalog must say revoked exactly when a signed revocation is on file."""
    if (consent.revoked_at is None) != (signed.revoked_at is None):
        state = "active" if consent.revoked_at is None else "revoked"
        raise ConsentError(f"the catalog shows consent {consent.id} as {state}, but its signed files say otherwise",
                           path=_folder(ws, consent), fix="restore the catalog and the consent folder from a backup")


def _folder(ws: Workspace, consent: ConsentRecord) -> Path:
    return ws.root / CONSENTS / consent.id
