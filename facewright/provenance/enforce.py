"""Consent enforcement: the one check every stage makes before it uses a face, and consent ids in manifests.

`require_consent` picks the active consent covering a role (provenance.consent holds the records), checks it
against its signed record.json (signed by a trusted chain) and against the consent ledger (provenance.ledger:
intact, equal to the head kept with the keys, recording these very files and this revocation state), and with
`match_faces` checks that the faces about to be used are the person in the consent photo. The trust anchors
and the ledger heads' folder come in as `trust`, which the API loads once.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from facewright.errors import ConsentError
from facewright.faces.identity import EMBEDDING_SIZE, THRESHOLD, centroid, distance
from facewright.files import sha256_file
from facewright.provenance.consent import (
    CONSENTS,
    LIST_FIX,
    USES,
    ConsentRecord,
    ConsentStatus,
    Role,
    check_role,
    get_consent,
    list_consents,
    utc_today,
    verify_record_file,
)
from facewright.provenance.ledger import (
    LEDGER,
    RESTORE_FIX,
    EventKind,
    Ledger,
    adopt_command,
    missing_ledger,
    revocations_here,
    verified_ledger,
)
from facewright.provenance.trust import Trust
from facewright.workspace import Workspace

MAX_OUTSIDE = 0.05  # share of faces allowed beyond THRESHOLD: detector noise, not another person


@dataclass(frozen=True)
class FaceMatch:
    """How far a batch of faces lies from a consent photo's face (L2 in dlib space)."""

    faces: int
    threshold: float
    outside: int  # faces farther than the threshold
    median_distance: float
    centroid_distance: float  # of the faces' mean embedding
    ok: bool

    def describe(self) -> str:
        return (f"{self.outside} of {self.faces} faces lie beyond {self.threshold} of the consent photo's face; "
                f"median distance {self.median_distance:.2f}, their centroid {self.centroid_distance:.2f}")


# --- enforcement -----------------------------------------------------------------------------------------------


def require_consent(ws: Workspace, identity: str, role: Role | str, embeddings: ArrayLike | None = None, *,
                    trust: Trust, today: date | None = None) -> ConsentRecord:
    """The active consent covering `role` for `identity` (the one expiring last), or ConsentError saying why.

    `embeddings` (N x 128 float32): the faces about to be used; they must be the person in the consent photo
    (see `match_faces`). The chosen record must also match its signed record.json, photo and revocation, and
    the consent ledger (see `check_signed`).
    """
    role = check_role(role, USES)
    today = today or utc_today()
    records = list_consents(ws, identity)
    usable = sorted((r for r in records if r.covers(role) and r.status(today) == ConsentStatus.ACTIVE),
                    key=lambda r: (r.expires, r.recorded_at), reverse=True)
    if not usable:
        raise ConsentError(_refusal(identity, role, records, today), fix=add_command(identity, role))
    match = None
    for consent in usable:  # several photos of one person: any of them may be the one these faces match
        match = match_faces(consent.embedding, embeddings) if embeddings is not None else None
        if match is None or match.ok:
            return check_signed(ws, consent, today, trust)
    raise ConsentError(f"these faces are not the person in the consent photo of {identity!r}: {match.describe()}; "
                       "consent for one person does not cover another person's images",
                       fix=f"use footage of {identity} only, or record that person's own consent: "
                           + add_command("IDENTITY", role))


def verified_consents(ws: Workspace, identity: str, role: Role | str, *, trust: Trust,
                      today: date | None = None) -> list[ConsentRecord]:
    """Every active consent of `identity` covering `role`, each checked against its signed files: what the
    swap's per-frame identity checks compare faces with (a person may have several consent photos)."""
    role = check_role(role, USES)
    today = today or utc_today()
    return [check_signed(ws, r, today, trust) for r in list_consents(ws, identity)
            if r.covers(role) and r.status(today) == ConsentStatus.ACTIVE]


def _refusal(identity: str, role: Role, records: list[ConsentRecord], today: date) -> str:
    """Why no consent of `records` covers `role` today, in one sentence."""
    if not records:
        return f"no consent is recorded for identity {identity!r}"
    covering = [r for r in records if r.covers(role)]
    if not covering:
        roles = sorted({r.role for r in records})
        return f"the consent of {identity!r} covers role {', '.join(roles)}, not {role}"
    reasons = []
    expired = [r for r in covering if r.status(today) == ConsentStatus.EXPIRED]
    if expired:
        reasons.append(f"expired on {max(r.expires for r in expired)} (today is {today})")
    for r in (r for r in covering if r.revoked_at is not None):
        reasons.append(f"consent {r.id[:8]} was revoked on {r.revoked_at[:10]} by {r.revoked_by}: {r.revoked_reason}")
    return f"no active consent of {identity!r} as {role}: " + "; ".join(reasons)


def add_command(identity: str, role: Role | str) -> str:
    """The command line that records a consent for `identity` as `role` (placeholders in capitals)."""
    return (f"facewright consent add --identity {shlex.quote(identity)} --display-name NAME --role {role} "
            "--photo PHOTO --purpose PURPOSE --channels CHANNEL --expires YYYY-MM-DD")


def consent_for_any_role(ws: Workspace, identity: str, *, trust: Trust) -> ConsentRecord:
    """The active consent of `identity` for either role: a faceset may later serve as source or target."""
    try:
        return require_consent(ws, identity, Role.SOURCE, trust=trust)
    except ConsentError as first:
        try:
            return require_consent(ws, identity, Role.TARGET, trust=trust)
        except ConsentError:
            raise first from None


def active_consent(ws: Workspace, consent_id: str, *, trust: Trust) -> ConsentRecord:
    """The consent with this id (or unique prefix) if it is active and checks out (`check_signed`), else
    ConsentError saying what it is."""
    record = get_consent(ws, consent_id)
    if record.status() != ConsentStatus.ACTIVE:
        raise ConsentError(f"consent {record.id} ({record.identity}) is {record.status()}",
                           fix=add_command(record.identity, record.role))
    return check_signed(ws, record, utc_today(), trust)


def refuse_revoked(ws: Workspace, consent_ids: Iterable[str], what: str, path: Path | None = None, *,
                   trust: Trust) -> None:
    """ConsentError if any of `consent_ids` was revoked (in the catalog or the consent ledger): what was made
    under it (`what`: a model) is not used, whatever newer consent exists."""
    consent_ids = list(consent_ids)
    ledger = _ledger(ws, trust) if consent_ids else None
    for consent_id in consent_ids:
        record = get_consent(ws, consent_id)
        if record.status() == ConsentStatus.REVOKED or ledger.find(EventKind.REVOKE, record.id):
            raise ConsentError(f"{what} was made under consent {record.id[:12]} of {record.identity}, which has been "
                               "revoked", path=path, fix=f"do not use {what}; make a new one under an active consent")


def check_signed(ws: Workspace, consent: ConsentRecord, today: date, trust: Trust) -> ConsentRecord:
    """`consent` if the ledger is sound (`verified_ledger`), its files check out against the catalog row and the
    ledger (`check_recorded`), and no signed revocation is beside it."""
    signed = check_recorded(ws, consent, trust)
    if signed.status(today) != ConsentStatus.ACTIVE:
        raise ConsentError(f"consent {consent.id} is {signed.status(today)} in its signed files",
                           fix=add_command(consent.identity, consent.role))
    return consent


def check_recorded(ws: Workspace, consent: ConsentRecord, trust: Trust, ledger: Ledger | None = None, *,
                   unledgered_revocation: bool = False) -> ConsentRecord:
    """The signed twin of catalog row `consent`, whatever its status, after checking: record.json (and any
    revocation.json) signed by a trusted chain and equal to the row; both files the very ones the ledger
    (default: the workspace's, verified) recorded; a revocation in the ledger still on file.
    `unledgered_revocation`: allow a signed revocation.json the ledger lacks (adopting a ledger adds its event)."""
    ledger = ledger or _ledger(ws, trust)
    folder = ws.root / CONSENTS / consent.id
    signed = check_files(ws, consent, trust)
    added, revoked = ledger.find(EventKind.ADD, consent.id), ledger.find(EventKind.REVOKE, consent.id)
    if added is None:
        raise ConsentError(f"consent {consent.id} is not in the consent ledger: it was not recorded in this workspace "
                           "by facewright consent add", path=ws.root / LEDGER, fix=RESTORE_FIX)
    _check_ledgered(folder / "record.json", added.sha256, added.at)
    revocation = folder / "revocation.json"
    if revoked is not None and not revocation.is_file():
        raise ConsentError(f"consent {consent.id} was revoked on {revoked.at[:10]} according to the ledger, but its "
                           "revocation record is missing", path=revocation,
                           fix="restore revocation.json from a backup: a revoked consent stays revoked; "
                               f"{add_command(consent.identity, consent.role)} records a new consent if the person "
                               "agrees again")
    if revoked is not None:
        _check_ledgered(revocation, revoked.sha256, revoked.at)
    elif revocation.is_file() and not unledgered_revocation:
        raise ConsentError(f"consent {consent.id} has a signed revocation the consent ledger lacks", path=revocation,
                           fix=f"record it in the ledger: {adopt_command(ws)}")
    check_revocations_here(ws, consent, trust, revoked=revoked is not None or revocation.is_file())
    return signed


def check_revocations_here(ws: Workspace, consent: ConsentRecord, trust: Trust, *, revoked: bool) -> None:
    """ConsentError if `consent` is not `revoked` here though a ledger this machine keeps a head of revoked it
    (a copy of this workspace, or an older copy of its files): a revocation holds in every workspace here."""
    head = None if revoked else revocations_here(trust).get(consent.id)
    if head is not None:
        raise ConsentError(f"consent {consent.id} was revoked on {head.revoked[consent.id][:10]} in the workspace at "
                           f"{head.folder}, as this machine recorded, but this workspace's ledger does not say so",
                           path=ws.root / CONSENTS / consent.id,
                           fix="a revocation holds in every copy of a workspace: do not use this consent; "
                               + add_command(consent.identity, consent.role) + " records a new one if the person "
                               "agrees again")


def check_files(ws: Workspace, consent: ConsentRecord, trust: Trust) -> ConsentRecord:
    """The signed twin of catalog row `consent` (see `verify_record_file`), which must equal the row."""
    signed = verify_record_file(ws.root / CONSENTS / consent.id / "record.json", trust)
    if signed.record_sha256 != consent.record_sha256:
        raise ConsentError(f"the catalog's consent {consent.id} differs from its signed record.json",
                           path=ws.catalog, fix="restore the catalog from a catalog.sqlite.bak-v* file; " + LIST_FIX)
    return signed


def _check_ledgered(path: Path, sha256: str, at: str) -> None:
    if sha256_file(path) != sha256:
        raise ConsentError(f"{path.name} differs from the one the consent ledger recorded on {at[:10]}", path=path,
                           fix=RESTORE_FIX)


def _ledger(ws: Workspace, trust: Trust) -> Ledger:
    """The verified ledger of a workspace that has consents (so it must have one)."""
    ledger = verified_ledger(ws, trust)
    if ledger is None:
        raise missing_ledger(ws, trust)
    return ledger


def match_faces(reference: ArrayLike, embeddings: ArrayLike, threshold: float = THRESHOLD,
                max_outside: float = MAX_OUTSIDE) -> FaceMatch:
    """Compare N x 128 embeddings with a (128,) reference. ok: their centroid is within `threshold` and at most
    `max_outside` of them lie beyond it (a few bad detections pass; another person's faces do not)."""
    reference = np.asarray(reference, np.float32)
    embeddings = np.asarray(embeddings, np.float32)
    if reference.shape != (EMBEDDING_SIZE,) or embeddings.ndim != 2 or embeddings.shape[1:] != (EMBEDDING_SIZE,):
        raise ValueError(f"expected a (128,) reference and N x 128 faces, got {reference.shape}, {embeddings.shape}")
    if len(embeddings) == 0 or not (np.isfinite(embeddings).all() and np.isfinite(reference).all()):
        raise ValueError("no faces, or non-finite embeddings: nothing can be matched")
    distances = np.asarray(distance(embeddings, reference))
    outside = int((distances > threshold).sum())
    to_centroid = float(distance(centroid(embeddings), reference))
    return FaceMatch(len(embeddings), threshold, outside, float(np.median(distances)), to_centroid,
                     to_centroid <= threshold and outside <= max_outside * len(embeddings))
