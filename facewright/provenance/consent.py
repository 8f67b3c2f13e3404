"""Consent records: who agreed to have their face used (source) or replaced (target), for what, and until when.

Recording, verifying, revoking and looking up records; provenance.enforce checks them before a face is used.
A record is kept twice: a row in the catalog's `consents` table and `consents/<id>/record.json`, signed with the
local signing identity (provenance.keys) over the canonical JSON of its fields. The consent photo is copied beside
it and its face's 128-d dlib embedding recorded, so `enforce.require_consent` can check that the faces about to be
used belong to that person. Revocation is recorded (revoked_* columns and a signed `revocation.json`), never a
delete. Both files count only when signed by a trusted chain (provenance.trust), and each is an event of the
workspace's consent ledger (provenance.ledger). Dates are UTC calendar dates; `expires` is the last valid day.
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

import numpy as np
from numpy.typing import ArrayLike

from facewright.errors import ConsentError, InputError, NoFaceError, OptionError
from facewright.faces.detect import Detection, Detector, create_detector
from facewright.faces.identity import EMBEDDING_SIZE, Embedding, IdentityEncoder
from facewright.files import PRIVATE_DIR, atomic_path, private_dir, require_file, sha256_file
from facewright.media.image import Frame, read_image
from facewright.media.kind import MediaKind, media_kind
from facewright.names import check_name
from facewright.provenance.guard import sexual_term
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.ledger import EventKind, append
from facewright.provenance.signed import check_seal, seal
from facewright.provenance.trust import Trust, canonical_json
from facewright.workspace import Workspace, now


class Role(StrEnum):
    """What a person agreed to. The pipeline asks for SOURCE or TARGET; a BOTH consent covers either."""

    SOURCE = "source"  # their face (person A) goes into other footage
    TARGET = "target"  # their footage (person B) gets another face
    BOTH = "both"


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # after its last valid day
    REVOKED = "revoked"


ROLES = tuple(Role)
USES = (Role.SOURCE, Role.TARGET)  # what a pipeline stage asks for
CONSENTS = "consents"  # folder in the workspace: consents/<id>/{photo<ext>, record.json, revocation.json}
MIN_PURPOSE_CHARS = 10  # "a film" says nothing; the person must be able to tell what they agreed to
MAX_YEARS = 10  # consent is not forever: it must be renewed at least this often
MIN_PREFIX = 6  # hex digits of an id the user may type instead of all 32
RECORD_SCHEMA = "facewright.consent/1"
REVOCATION_SCHEMA = "facewright.consent-revocation/1"
DETECTOR = "blazeface-full"  # full range also finds small bystanders, who would make the photo ambiguous
LIST_FIX = "see the recorded consents and their ids: facewright consent list"


@dataclass(frozen=True)
class ConsentRecord:
    """One person's recorded consent. Times are UTC ISO 8601 strings; `expires` is the last valid day (UTC)."""

    id: str  # 32 hex digits of a uuid4: random, so an id reveals neither how many consents exist nor their order
    identity: str  # the workspace identity (faceset name) the consent is for
    display_name: str  # name or pseudonym, as the person wishes to be named
    role: Role
    purpose: str
    channels: tuple[str, ...]  # where the result may be shown
    expires: date
    photo: str  # workspace-relative POSIX path of the copied photo: consents/<id>/photo<ext>
    photo_sha256: str
    embedding: Embedding = field(repr=False, compare=False)  # (128,) float32 of the photo's face; not in ==
    release_sha256: str | None  # of the signed release document, which is not copied
    recorded_by: str
    recorded_at: str
    scope: str = ""  # free tag ("demo"); not a permission
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None

    def status(self, today: date | None = None) -> ConsentStatus:
        """REVOKED, EXPIRED (after the `expires` day) or ACTIVE; `today` defaults to the UTC date."""
        if self.revoked_at is not None:
            return ConsentStatus.REVOKED
        return ConsentStatus.EXPIRED if (today or utc_today()) > self.expires else ConsentStatus.ACTIVE

    def covers(self, role: Role) -> bool:
        """True if this consent allows `role` (SOURCE or TARGET), whatever its status."""
        return self.role in (role, Role.BOTH)

    def signed_fields(self) -> dict:
        """The fields record.json signs: everything but the revocation, which is signed on its own."""
        return {"schema": RECORD_SCHEMA, "id": self.id, "identity": self.identity, "display_name": self.display_name,
                "role": self.role, "purpose": self.purpose, "channels": list(self.channels),
                "expires": self.expires.isoformat(), "photo": self.photo, "photo_sha256": self.photo_sha256,
                "embedding": base64.b64encode(_embedding_bytes(self.embedding)).decode("ascii"),
                "release_sha256": self.release_sha256, "recorded_by": self.recorded_by,
                "recorded_at": self.recorded_at, "scope": self.scope}

    @property
    def record_sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.signed_fields())).hexdigest()


def utc_today() -> date:
    return datetime.now(UTC).date()


# --- recording -------------------------------------------------------------------------------------------------


def add_consent(ws: Workspace, *, identity: str, display_name: str, role: str, purpose: str,
                channels: Sequence[str], expires: date | str, photo: str | Path, signer: SigningIdentity,
                trust: Trust, release: str | Path | None = None, recorded_by: str | None = None, scope: str = "",
                encoder: IdentityEncoder | None = None, detector: Detector | None = None) -> ConsentRecord:
    """Record a consent: check the fields, embed the photo's one face, copy the photo, write catalog + signed JSON.

    `signer` signs record.json and its ledger event; `trust` checks the ledger before it grows. `encoder` and
    `detector` default to fresh ones; callers that hold them loaded pass them in. Nothing is written unless every
    check passes.
    """
    purpose, channels = check_use(purpose, channels)
    record = dict(identity=check_name(identity, "--identity"), display_name=_required(display_name, "display name"),
                  role=check_role(role, ROLES), purpose=purpose, channels=channels,
                  expires=parse_expiry(expires, utc_today()), scope=scope.strip())
    photo = require_file(photo)
    photo_sha256 = sha256_file(photo)
    embedding = photo_embedding(read_image(photo), photo, encoder, detector)
    consent_id = uuid.uuid4().hex
    suffix = photo.suffix.lower() if media_kind(photo) == MediaKind.IMAGE else ""
    consent = ConsentRecord(
        id=consent_id, **record, photo=f"{CONSENTS}/{consent_id}/photo{suffix}", photo_sha256=photo_sha256,
        embedding=embedding, release_sha256=sha256_file(require_file(release)) if release is not None else None,
        recorded_by=(recorded_by or "").strip() or _os_user(), recorded_at=now())
    _store(ws, consent, photo, signer, trust)
    return consent


def check_use(purpose: str, channels: Sequence[str] | str) -> tuple[str, tuple[str, ...]]:
    """The stripped purpose and channels (empty and repeated channels dropped), or a typed error."""
    purpose = " ".join(purpose.split())
    if len(purpose) < MIN_PURPOSE_CHARS:
        raise OptionError(f"the purpose must say in plain words what the face is used for "
                          f"(at least {MIN_PURPOSE_CHARS} characters), got {purpose!r}",
                          fix='e.g. --purpose "short film for a student festival"')
    items = [channels] if isinstance(channels, str) else list(channels)
    channels = tuple(dict.fromkeys(c.strip() for c in items if c.strip()))
    if not channels:
        raise OptionError("no channel given: say where the result may be shown",
                          fix='e.g. --channels "film festival" --channels youtube')
    for text in (purpose, *channels):  # the scope and display name are names, not uses: not checked
        if term := sexual_term(text):
            raise ConsentError(f"{text!r} names sexual content ({term!r}); facewright does not make sexual content, "
                               "with or without consent", fix="record a consent for another purpose")
    return purpose, channels


def parse_expiry(expires: date | str, today: date) -> date:
    """The expiry date from a date or YYYY-MM-DD; it must be after `today` and at most MAX_YEARS ahead."""
    try:
        day = expires if isinstance(expires, date) else date.fromisoformat(str(expires).strip())
    except ValueError:
        raise OptionError(f"expiry {expires!r} is not a date", fix="give it as YYYY-MM-DD") from None
    day = day.date() if isinstance(day, datetime) else day
    latest = _years_after(today, MAX_YEARS)
    if day <= today:
        raise OptionError(f"expiry {day} is not in the future (today is {today}, UTC)",
                          fix="give the last day the person agreed to, after today")
    if day > latest:
        raise OptionError(f"expiry {day} is more than {MAX_YEARS} years ahead", fix=f"give a date up to {latest}")
    return day


def check_role(role: str, allowed: Sequence[Role]) -> Role:
    """`role` as a Role if it is one of `allowed`, else OptionError."""
    if role not in allowed:
        raise OptionError(f"unknown role {role!r}", fix=f"use one of {', '.join(allowed)}")
    return Role(role)


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def _required(text: str, what: str) -> str:
    text = str(text).strip()  # inner spaces kept: the identity must equal the faceset name it is checked against
    if not text:
        raise OptionError(f"the {what} is empty", fix=f"give the {what}")
    return text


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


def photo_faces(image: Frame, detector: Detector | None = None) -> list[Detection]:
    """Every face the consent photo's detector finds in `image` (a consent photo must show exactly one)."""
    if detector is not None:
        return list(detector.detect(image))
    with create_detector(DETECTOR) as own:
        return list(own.detect(image))


def photo_embedding(image: Frame, path: Path, encoder: IdentityEncoder | None, detector: Detector | None) -> Embedding:
    """The (128,) embedding of the one face in a photo (a consent photo, a swap reference); none or several
    is an error naming the file."""
    found = photo_faces(image, detector)
    if not found:
        raise NoFaceError("no face found in the photo", path=path,
                          fix="give a clear, front-facing photo of the one person")
    if len(found) > 1:
        raise InputError(f"{len(found)} faces found in the photo; it must show only the one person it stands for",
                         path=path, fix="crop the photo to that person's face, or use one of them alone")
    return (encoder or IdentityEncoder()).embed(image, found[0])


def _store(ws: Workspace, consent: ConsentRecord, photo: Path, signer: SigningIdentity, trust: Trust) -> None:
    """Insert the row, write photo + record.json and append the ledger event in one transaction; on failure
    neither row nor files stay."""
    folder = (ws.root / consent.photo).parent
    private_dir(folder.parent, ws.root)  # the photo, its face embedding and the purpose: owner only
    folder.mkdir(mode=PRIVATE_DIR)  # a fresh uuid4: an existing folder would be a bug, never overwritten
    try:
        with ws.transaction():
            _insert(ws, consent)
            _copy_photo(photo, ws.root / consent.photo, consent.photo_sha256)
            _write_signed(folder / "record.json", "record", consent.signed_fields(), signer)
            append(ws, EventKind.ADD, consent.id, folder / "record.json", consent.recorded_at, signer=signer,
                   trust=trust, may_start=not _others(ws, consent.id))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _insert(ws: Workspace, c: ConsentRecord) -> None:
    ws.conn.execute(
        "INSERT INTO consents (id, identity_id, display_name, role, purpose, channels, expires, photo_path, "
        "photo_sha256, embedding, release_sha256, recorded_by, recorded_at, scope, record_sha256) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (c.id, ws.identity_id(c.identity), c.display_name, c.role, c.purpose, json.dumps(list(c.channels)),
         c.expires.isoformat(), c.photo, c.photo_sha256, _embedding_bytes(c.embedding), c.release_sha256,
         c.recorded_by, c.recorded_at, c.scope, c.record_sha256))


def _others(ws: Workspace, consent_id: str) -> bool:
    """Whether the catalog holds a consent other than `consent_id`."""
    return ws.conn.execute("SELECT 1 FROM consents WHERE id != ? LIMIT 1", (consent_id,)).fetchone() is not None


def _copy_photo(photo: Path, target: Path, sha256: str) -> None:
    with atomic_path(target, private=True) as tmp:
        shutil.copyfile(photo, tmp)
        if sha256_file(tmp) != sha256:  # the embedding and hash must describe the very bytes kept
            raise InputError("the photo changed while it was being recorded", path=photo,
                             fix="wait until the file is fully written, then record the consent again")


def _write_signed(path: Path, key: str, payload: dict, signer: SigningIdentity) -> None:
    """{key: payload, "signature": base64, "signer_chain": PEM, "alg": ...}, signed over canonical_json(payload)."""
    doc = {key: payload, **seal(payload, signer)}
    with atomic_path(path, private=True) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _embedding_bytes(embedding: ArrayLike) -> bytes:
    return np.asarray(embedding, "<f4").reshape(EMBEDDING_SIZE).tobytes()  # little-endian: same bytes everywhere


def _embedding_from(data: bytes) -> Embedding:
    return np.frombuffer(data, "<f4").astype(np.float32)


# --- verifying and revoking ------------------------------------------------------------------------------------


def verify_record_file(path: str | Path, trust: Trust) -> ConsentRecord:
    """The consent in a record.json, after checking its signature, its photo's sha256 and any revocation.json.

    Both signatures must verify, by a chain that leads to one of `trust`'s anchors (anyone can make a key and
    re-sign a file). Raises ConsentError if anything does not verify.
    """
    path = require_file(path)
    consent = _record_from(_verified(path, "record", trust), path)
    photo = path.parent / PurePosixPath(consent.photo).name
    if not photo.is_file() or sha256_file(photo) != consent.photo_sha256:
        raise ConsentError("the consent photo is missing or differs from the signed record", path=photo,
                           fix="restore the photo from a backup; a consent whose evidence changed is not used")
    revocation = path.parent / "revocation.json"
    if revocation.exists():
        rev = _verified(revocation, "revocation", trust)
        if rev.get("consent_id") != consent.id or rev.get("record_sha256") != consent.record_sha256:
            raise ConsentError("the revocation is for another record", path=revocation, fix=LIST_FIX)
        consent = replace(consent, revoked_at=rev["revoked_at"], revoked_by=rev["revoked_by"],
                          revoked_reason=rev["reason"])
    return consent


def _verified(path: Path, key: str, trust: Trust) -> dict:
    """The signed payload under `key` of a JSON file, or ConsentError if it is unreadable, does not verify or is
    signed by a chain outside `trust`."""
    fix = "restore the consent folder from a backup; a tampered record is never used"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        payload = doc[key]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsentError(f"unreadable signed {key} ({exc})", path=path, fix=fix) from exc
    check_seal(doc, payload, trust, what=key, path=path, fix=fix)
    return payload


def _record_from(fields: dict, path: Path) -> ConsentRecord:
    try:
        if fields["schema"] != RECORD_SCHEMA:
            raise ValueError(f"schema {fields['schema']!r}")
        values = {k: v for k, v in fields.items() if k != "schema"}
        return ConsentRecord(**values | {"role": Role(fields["role"]), "channels": tuple(fields["channels"]),
                                         "expires": date.fromisoformat(fields["expires"]),
                                         "embedding": _embedding_from(base64.b64decode(fields["embedding"]))})
    except (KeyError, TypeError, ValueError) as exc:
        raise ConsentError(f"not a consent record this facewright reads ({exc})", path=path, fix=LIST_FIX) from exc


def revoke(ws: Workspace, consent_id: str, reason: str, by: str | None = None, *,
           signer: SigningIdentity, trust: Trust) -> ConsentRecord:
    """Mark a consent revoked (catalog + signed consents/<id>/revocation.json + a ledger event); it stays listed,
    as revoked. A ledger that cannot take the event (missing, broken) does not undo the revocation: it is recorded,
    then the ledger's error raised (`consent adopt-ledger` adds the event once the ledger is sound)."""
    consent = get_consent(ws, consent_id)
    revoked = replace(consent, revoked_at=now(), revoked_by=(by or "").strip() or _os_user(),
                      revoked_reason=_required(reason, "reason"))
    payload = {"schema": REVOCATION_SCHEMA, "consent_id": consent.id, "record_sha256": consent.record_sha256,
               "revoked_at": revoked.revoked_at, "revoked_by": revoked.revoked_by, "reason": revoked.revoked_reason}
    with ws.transaction():
        changed = ws.conn.execute(
            "UPDATE consents SET revoked_at = ?, revoked_by = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS "
            "NULL", (revoked.revoked_at, revoked.revoked_by, revoked.revoked_reason, consent.id)).rowcount
        if not changed:  # checked under the write lock: two revokes at once cannot both pass
            raise OptionError(f"consent {consent.id} is already revoked", fix=LIST_FIX)
        path = ws.root / CONSENTS / consent.id / "revocation.json"
        _write_signed(path, "revocation", payload, signer)
        try:
            append(ws, EventKind.REVOKE, consent.id, path, revoked.revoked_at, signer=signer, trust=trust,
                   may_start=False)
        except ConsentError as exc:  # a person's withdrawal is never refused: it stands, and the ledger is fixed
            unledgered = exc
        else:
            unledgered = None
    if unledgered is not None:
        raise ConsentError(f"consent {consent.id} is revoked (catalog and signed revocation.json), but the consent "
                           f"ledger could not record it: {unledgered.message}", path=unledgered.path,
                           fix=unledgered.fix) from unledgered
    return revoked


# --- reading ---------------------------------------------------------------------------------------------------


def list_consents(ws: Workspace, identity: str | None = None, include_revoked: bool = True) -> list[ConsentRecord]:
    """Consents in the catalog, oldest first; of one identity if given; revoked ones unless excluded."""
    where, params = [], []
    if identity is not None:
        where.append("i.name = ?")
        params.append(identity)
    if not include_revoked:
        where.append("c.revoked_at IS NULL")
    return _select(ws, " AND ".join(where) or "1", params)


def get_consent(ws: Workspace, id_or_prefix: str) -> ConsentRecord:
    """The consent whose id is, or starts with, `id_or_prefix` (at least MIN_PREFIX hex digits)."""
    key = id_or_prefix.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{{MIN_PREFIX},32}}", key):
        raise OptionError(f"{id_or_prefix!r} is not a consent id or a prefix of at least {MIN_PREFIX} hex digits",
                          fix=LIST_FIX)
    found = _select(ws, "c.id LIKE ?", [key + "%"])  # hex only, so no LIKE wildcard can be in the key
    if not found:
        raise ConsentError(f"no consent has an id starting with {key}", fix=LIST_FIX)
    if len(found) > 1:
        raise ConsentError(f"{len(found)} consents have ids starting with {key}: {', '.join(c.id for c in found)}",
                           fix="give more digits of the id; " + LIST_FIX)
    return found[0]


def _select(ws: Workspace, where: str, params: Sequence[object]) -> list[ConsentRecord]:
    rows = ws.conn.execute(
        "SELECT c.*, i.name AS identity FROM consents c JOIN identities i ON i.id = c.identity_id "
        f"WHERE {where} ORDER BY c.recorded_at, c.id", params)
    return [_from_row(row) for row in rows]


def _from_row(row) -> ConsentRecord:
    return ConsentRecord(
        id=row["id"], identity=row["identity"], display_name=row["display_name"], role=Role(row["role"]),
        purpose=row["purpose"], channels=tuple(json.loads(row["channels"])),
        expires=date.fromisoformat(row["expires"]), photo=row["photo_path"], photo_sha256=row["photo_sha256"],
        embedding=_embedding_from(row["embedding"]), release_sha256=row["release_sha256"],
        recorded_by=row["recorded_by"], recorded_at=row["recorded_at"], scope=row["scope"],
        revoked_at=row["revoked_at"], revoked_by=row["revoked_by"], revoked_reason=row["revoked_reason"])
