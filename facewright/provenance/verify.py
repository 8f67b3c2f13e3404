"""`facewright verify`: a layered provenance report for any image or video.

Layers, each independent of the others so that stripping one does not hide the rest:
1. C2PA manifest: none / valid / trusted / invalid, with the validator's codes;
2. invisible watermark: payload, bit accuracy, p-value (survives re-encoding that strips the manifest);
3. the catalog record, when this workspace made the file: what was made, under which consents, and
   whether those consents are still active today;
4. the visible label choice, as recorded in the manifest (or the catalog).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path

from facewright.errors import ConsentError, InputError, UnsupportedFormatError
from facewright.files import require_file
from facewright.media.image import Frame, read_image
from facewright.media.video import read_video
from facewright.provenance import watermark
from facewright.provenance.c2pa import C2paReport, read_file
from facewright.provenance.consent import get_consent
from facewright.provenance.mark import consent_id_matches
from facewright.workspace import Workspace

# One exit code per outcome (0 and the 10s: 1 is a crash, 2 bad input, 3 missing consent).
OUTCOMES = {
    "verified": 0,  # a valid (or trusted) manifest and the watermark, naming the same output
    "watermark-only": 10,  # the manifest is gone (re-saved, re-encoded, stripped); the watermark remains
    "manifest-only": 11,  # a valid manifest, but no watermark found (heavily altered pictures)
    "no-provenance": 12,  # neither: not made by facewright, or altered beyond recognition
    "mismatch": 13,  # manifest and watermark name different outputs: pieces of two files put together
    "invalid": 14,  # a manifest that fails validation: the file changed after signing
}
VIDEO_FRAMES = 600  # frames read for the watermark: 20 s at 30 fps is far more than a clip needs


@dataclass(frozen=True)
class ConsentCheck:
    consent_id: str
    identity: str
    role: str
    status: str  # active | expired | revoked | unknown
    in_manifest: bool  # its salted hash is among the manifest's


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    outcome: str
    c2pa: C2paReport
    watermark: watermark.WatermarkResult | None
    record: dict | None = None  # the catalog's mark row, when this workspace made the file
    consents: tuple[ConsentCheck, ...] = ()
    label: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    def to_dict(self) -> dict:
        mark = self.watermark
        return {
            "path": str(self.path), "outcome": self.outcome, "exit_code": self.exit_code,
            "c2pa": {"state": self.c2pa.state, "codes": list(self.c2pa.codes), "signer": self.c2pa.signer,
                     "generator": self.c2pa.generator, "facewright": self.c2pa.facewright},
            "watermark": None if mark is None else {
                "found": mark.found, "payload": mark.payload_hex, "bit_accuracy": round(mark.bit_accuracy, 4),
                "p_value": mark.p_value, "frames": mark.frames, "scale": mark.scale},
            "record": self.record, "consents": [asdict(c) for c in self.consents],
            "label": self.label, "notes": list(self.notes),
        }


def pictures(path: Path, limit: int = VIDEO_FRAMES) -> Iterator[Frame]:
    """The picture of an image file, or the first `limit` frames of a video."""
    try:
        image = read_image(path)
    except UnsupportedFormatError:  # not an image: a video, or the video reader names the problem
        yield from (frame.image for frame in islice(read_video(path), limit))
        return
    yield image


def outcome(c2pa: C2paReport, mark: watermark.WatermarkResult | None) -> str:
    """Combine the two machine-readable layers into one outcome (see OUTCOMES)."""
    if c2pa.state == "invalid":
        return "invalid"
    has_manifest = c2pa.state in ("valid", "trusted")
    found = mark is not None and mark.found
    if has_manifest and found:
        claimed = ((c2pa.facewright or {}).get("watermark") or {}).get("payload")
        return "verified" if claimed in (None, mark.payload_hex) else "mismatch"
    if found:
        return "watermark-only"
    return "manifest-only" if has_manifest else "no-provenance"


def verify_file(path: str | Path, *, anchors_pem: bytes | None = None, lookup: CatalogLookup | None = None,
                today: date | None = None) -> VerifyReport:
    """Check every provenance layer of `path`; `lookup` reads a workspace's catalog (None: no workspace)."""
    path = require_file(path)
    c2pa = read_file(path, anchors_pem)
    try:
        mark, unreadable = watermark.detect_frames(pictures(path)), None
    except InputError as exc:  # a damaged picture: the manifest's verdict still stands, and says why
        mark, unreadable = None, f"the pictures cannot be decoded for the watermark: {exc.message}"
    payload = (mark and mark.payload_hex) or ((c2pa.facewright or {}).get("watermark") or {}).get("payload")
    record = lookup(payload) if lookup is not None and payload else None
    consents = _consent_checks(record, c2pa, lookup, today or date.today()) if record else ()
    label = (c2pa.facewright or {}).get("label") or (record or {}).get("label")
    notes = _notes(c2pa, mark, record) + ((unreadable,) if unreadable else ())
    return VerifyReport(path, outcome(c2pa, mark), c2pa, mark, record, consents, label, notes)


def _consent_checks(record: dict, c2pa: C2paReport, lookup: CatalogLookup, today: date) -> tuple[ConsentCheck, ...]:
    manifest = (c2pa.facewright or {}).get("consent") or {}
    salt = bytes.fromhex(manifest.get("salt", "")) if manifest.get("salt") else None
    hashes = set(manifest.get("hashes") or ())
    statuses = []
    for consent_id in record.get("consent_ids", ()):
        in_manifest = salt is not None and any(consent_id_matches(h, consent_id, salt) for h in hashes)
        statuses.append(lookup.consent(consent_id, today, in_manifest))
    return tuple(statuses)


def _notes(c2pa: C2paReport, mark: watermark.WatermarkResult | None, record: dict | None) -> tuple[str, ...]:
    notes = []
    if c2pa.state == "valid" and any("untrusted" in code for code in c2pa.codes):
        notes.append("the signature is valid but its certificate is not in the trust list: pass --anchor "
                     "with the signer's root (facewright keys export-anchor) to check who signed it")
    if c2pa.state == "none" and mark is not None and mark.found:
        notes.append("the C2PA manifest was removed (re-saved or re-encoded); the watermark still identifies it")
    if mark is not None and mark.found and record is None:
        notes.append("made by facewright, but not in this workspace's catalog")
    return tuple(notes)


class CatalogLookup:
    """Finds marks and consents in an open workspace (read-only use)."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def __call__(self, payload_hex: str) -> dict | None:
        """The catalog row of the output marked with this payload, or None."""
        cursor = self.ws.conn.execute("SELECT * FROM marks WHERE payload = ?", (payload_hex,))
        row = cursor.fetchone()
        if row is None:
            return None
        record = dict(zip([column[0] for column in cursor.description], row, strict=True))
        record["consent_ids"] = json.loads(record.pop("consent_ids_json"))
        return record

    def consent(self, consent_id: str, today: date, in_manifest: bool) -> ConsentCheck:
        try:
            record = get_consent(self.ws, consent_id)
        except ConsentError:
            return ConsentCheck(consent_id, "?", "?", "unknown", in_manifest)
        return ConsentCheck(record.id, record.identity, record.role, record.status(today), in_manifest)

