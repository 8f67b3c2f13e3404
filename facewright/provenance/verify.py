"""`facewright verify`: a layered provenance report for any image or video.

Layers, each independent of the others so that stripping one does not hide the rest:
1. C2PA manifest: none / valid / trusted / invalid, with the validator's codes and the signing certificate.
   Only a manifest signed under a trusted root (this machine's, or one given with --anchor) is taken at its
   word: anyone can make a certificate named like ours and write a facewright assertion;
2. invisible watermark: payload, bit accuracy, p-value (survives re-encoding that strips the manifest). Its
   pattern is public, so it says which record it names, not that this content is that record's;
3. the catalog record, when this workspace made the file: what was made, under which consents (and whether
   they are still active today), and a fingerprint of what was marked, compared with the file in hand
   (provenance.fingerprint) when the watermark is the evidence: a watermark copied onto other content shows;
4. the visible label choice, as recorded in the manifest (or the catalog).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path

from facewright.errors import ConsentError, InputError, InvalidMediaError, UnsupportedFormatError
from facewright.files import require_file
from facewright.media.image import Frame, read_image
from facewright.media.video import read_video
from facewright.provenance import fingerprint, watermark
from facewright.provenance.c2pa import UNPARSEABLE, C2paReport, read_file
from facewright.provenance.consent import get_consent
from facewright.provenance.mark import consent_id_matches
from facewright.workspace import Workspace

# One exit code per outcome (0 and the 10s: 1 is a crash, 2 bad input, 3 missing consent). "Ours" below means
# a valid manifest that carries the org.facewright.provenance assertion; a manifest of another tool is not.
OUTCOMES = {
    "verified": 0,  # our manifest, signed under a trusted root, and the watermark, naming the same output
    "watermark-only": 10,  # no manifest of ours (stripped by re-saving or re-encoding); the watermark remains
    "manifest-only": 11,  # our manifest, signed under a trusted root, but no watermark found (heavily altered)
    "no-provenance": 12,  # neither: not made by facewright (another tool's manifest is noted), or altered beyond
    "mismatch": 13,  # our trusted manifest and the watermark name different outputs: two files put together
    "invalid": 14,  # a manifest that fails validation, or a container c2pa cannot parse: changed after signing
    "untrusted-signer": 15,  # our manifest, validly signed, but by a certificate no trusted root issued
    "different-content": 16,  # the watermark names a recorded output, and this is not its content: copied mark
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
    content: fingerprint.Match | None = None  # the file in hand against the record's fingerprint, when compared

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    def to_dict(self) -> dict:
        mark, cert = self.watermark, self.c2pa.certificate
        return {
            "path": str(self.path), "outcome": self.outcome, "exit_code": self.exit_code,
            "c2pa": {"state": self.c2pa.state, "codes": list(self.c2pa.codes), "trusted": self.c2pa.trusted,
                     "signer": self.c2pa.signer, "certificate": None if cert is None else asdict(cert),
                     "generator": self.c2pa.generator, "facewright": self.c2pa.facewright,
                     "foreign": self.c2pa.foreign},
            "watermark": None if mark is None else {
                "found": mark.found, "payload": mark.payload_hex, "bit_accuracy": round(mark.bit_accuracy, 4),
                "p_value": mark.p_value, "frames": mark.frames, "scale": mark.scale, "rotation": mark.rotation,
                "mirrored": mark.mirrored},
            "content": _content_dict(self.content),
            "record": self.record, "consents": [asdict(c) for c in self.consents],
            "label": self.label, "notes": list(self.notes),
        }


def _content_dict(match: fingerprint.Match | None) -> dict | None:
    if match is None:
        return None
    return {"verdict": match.verdict, "score": match.score, "frames": match.frames, "stored": match.stored,
            "pose": match.pose.describe() if match.pose else None, "same_at": fingerprint.SAME_AT,
            "different_below": fingerprint.DIFFERENT_BELOW}


def pictures(path: Path, limit: int = VIDEO_FRAMES) -> Iterator[Frame]:
    """The picture of an image file, or the first `limit` frames of a video."""
    try:
        image = read_image(path)
    except UnsupportedFormatError:  # not an image: a video, or the video reader names the problem
        yield from (frame.image for frame in islice(read_video(path), limit))
        return
    yield image


class Decodable:
    """The pictures of a file up to the first one that cannot be decoded; the error, if any, is kept."""

    def __init__(self, frames: Iterable[Frame]):
        self._frames = frames
        self.count = 0
        self.error: InputError | None = None

    def __iter__(self) -> Iterator[Frame]:
        try:
            for frame in self._frames:
                self.count += 1
                yield frame
        except InputError as exc:
            self.error = exc


def outcome(c2pa: C2paReport, mark: watermark.WatermarkResult | None, content: str | None = None) -> str:
    """Combine the layers into one outcome (see OUTCOMES). `content`: fingerprint.Match.verdict, if compared.

    A trusted manifest of ours binds the file's bytes, so its verdict stands without a fingerprint. Otherwise
    the watermark is the evidence, and a fingerprint of other content overrules it. Our manifest under an
    untrusted signer is never "verified", whatever the watermark says: the watermark is public, and its
    agreement with a forged manifest proves nothing.
    """
    if c2pa.state == "invalid":
        return "invalid"
    found = mark is not None and mark.found
    if c2pa.ours and c2pa.trusted:
        if not found:
            return "manifest-only"
        claimed = (c2pa.facewright.get("watermark") or {}).get("payload")
        return "verified" if claimed in (None, mark.payload_hex) else "mismatch"
    if found and content == "different":
        return "different-content"
    if c2pa.ours:
        return "untrusted-signer"
    return "watermark-only" if found else "no-provenance"


def verify_file(path: str | Path, *, anchors_pem: bytes | None = None, lookup: CatalogLookup | None = None,
                today: date | None = None) -> VerifyReport:
    """Check every provenance layer of `path`; `lookup` reads a workspace's catalog (None: no workspace).

    A file whose container c2pa cannot parse (bytes appended to an MP4) is checked on the frames that decode;
    one where neither the manifest nor any picture can be read raises an InvalidMediaError.
    """
    path = require_file(path)
    c2pa = read_file(path, anchors_pem)
    decodable, sampler = Decodable(pictures(path)), fingerprint.Sampler()
    detected = watermark.detect_frames(sampler.watch(decodable) if lookup is not None else decodable)
    mark = detected if decodable.count else None
    if mark is None and decodable.error is not None and UNPARSEABLE in c2pa.codes:
        raise InvalidMediaError(f"damaged or truncated: neither its C2PA manifest nor any picture can be read "
                                f"({decodable.error.message})", path=path, fix=decodable.error.fix) from decodable.error
    payload = (mark and mark.payload_hex) or ((c2pa.facewright or {}).get("watermark") or {}).get("payload")
    record = lookup(payload) if lookup is not None and payload else None
    content = _compare(c2pa, mark, lookup.thumbnails(payload) if record else None, sampler)
    consents = _consent_checks(record, c2pa, lookup, today or date.today()) if record else ()
    label = (c2pa.facewright or {}).get("label") or (record or {}).get("label")
    result = outcome(c2pa, mark, content.verdict if content else None)
    notes = _notes(c2pa, mark, record, content, lookup is not None) + _reading_notes(c2pa, decodable)
    return VerifyReport(path, result, c2pa, mark, record, consents, label, notes, content)


def _compare(c2pa: C2paReport, mark: watermark.WatermarkResult | None, stored: fingerprint.Thumbnails | None,
             sampler: fingerprint.Sampler) -> fingerprint.Match | None:
    """The file in hand against the record its watermark names, where the outcome rests on the watermark."""
    if mark is None or not mark.found or stored is None or (c2pa.ours and c2pa.trusted):
        return None
    return fingerprint.compare(stored, sampler.frames)


def _consent_checks(record: dict, c2pa: C2paReport, lookup: CatalogLookup, today: date) -> tuple[ConsentCheck, ...]:
    manifest = (c2pa.facewright or {}).get("consent") or {}
    salt = bytes.fromhex(manifest.get("salt", "")) if manifest.get("salt") else None
    hashes = set(manifest.get("hashes") or ())
    statuses = []
    for consent_id in record.get("consent_ids", ()):
        in_manifest = salt is not None and any(consent_id_matches(h, consent_id, salt) for h in hashes)
        statuses.append(lookup.consent(consent_id, today, in_manifest))
    return tuple(statuses)


def _notes(c2pa: C2paReport, mark: watermark.WatermarkResult | None, record: dict | None,
           content: fingerprint.Match | None, has_catalog: bool) -> tuple[str, ...]:
    found = mark is not None and mark.found
    notes = [*_signer_notes(c2pa, mark)]
    if c2pa.state == "none" and found and not (content and content.verdict == "different"):
        notes.append("the C2PA manifest was removed (re-saved or re-encoded); the watermark still identifies it")
    if found and record is None and not (c2pa.ours and c2pa.trusted):
        where = "this workspace's catalog" if has_catalog else "a catalog (no workspace was read)"
        notes.append(f"the watermark is facewright's, but its output is not in {where}: the content cannot be "
                     "compared with what was marked, and a watermark alone proves neither who made the file nor "
                     "that it is unchanged")
    if record is not None:
        notes += _content_notes(record, content, found and not (c2pa.ours and c2pa.trusted))
    return tuple(notes)


def _signer_notes(c2pa: C2paReport, mark: watermark.WatermarkResult | None) -> Iterator[str]:
    signer = _who(c2pa)
    if c2pa.foreign:
        trust = "a trusted root" if c2pa.trusted else "a root this machine does not trust"
        yield (f"it carries a C2PA manifest of another tool ({c2pa.generator or 'unnamed generator'}), signed by "
               f"{signer} under {trust}, with no facewright assertion: it says nothing about facewright")
    elif c2pa.ours and not c2pa.trusted:
        yield (f"the manifest says facewright made this file, but it is signed by {signer}, whose certificate no "
               "trusted root issued: anyone can make a certificate with any name, so it proves nothing about who "
               "made the file; if you know the signer, get their root certificate (`facewright keys "
               "export-anchor` on their machine) and run verify again with --anchor ROOT.pem")
        claimed = (c2pa.facewright.get("watermark") or {}).get("payload")
        if mark is None or not mark.found:
            yield "no watermark found"
        elif claimed not in (None, mark.payload_hex):
            yield f"the watermark names another output ({mark.payload_hex}) than the manifest ({claimed})"
        else:
            yield "the watermark agrees with the manifest, which proves nothing more: the watermark is public"


def _who(c2pa: C2paReport) -> str:
    cert = c2pa.certificate
    if cert is None:
        return c2pa.signer or "an unnamed signer"
    return f"{cert.subject} (issued by {cert.issuer}, serial {cert.serial})"


def _content_notes(record: dict, content: fingerprint.Match | None, compared: bool) -> list[str]:
    if not compared:
        return []
    output = f"output {record['path']}"
    if not record.get("fingerprint_frames"):
        return [f"the catalog has no fingerprint of {output} (marked before facewright kept them): verify cannot "
                "check that the watermark is on the content it was put on"]
    if content is None or content.score is None:
        return [f"this file has no picture detailed enough to compare with {output}"]
    if content.verdict == "different":
        return [f"the watermark names {output}, but this is other content (fingerprint score {content.score:.2f}, "
                f"different below {fingerprint.DIFFERENT_BELOW}): the watermark was copied onto it"]
    if content.verdict == "unclear":
        return [f"cannot tell whether this is the content of {output}: fingerprint score {content.score:.2f} lies "
                f"between {fingerprint.DIFFERENT_BELOW} (different) and {fingerprint.SAME_AT} (same)"]
    return []


def _reading_notes(c2pa: C2paReport, decodable: Decodable) -> tuple[str, ...]:
    notes = []
    if UNPARSEABLE in c2pa.codes:
        notes.append("c2pa cannot parse the file's container (bytes appended after its end, or boxes broken by "
                     "an editing tool), so the manifest cannot be checked and counts as invalid; the watermark "
                     f"was read from the {decodable.count} picture(s) that decode")
    if decodable.error is not None:  # a damaged picture: the manifest's verdict still stands, and says why
        notes.append(f"the pictures cannot be decoded for the watermark after {decodable.count}: "
                     f"{decodable.error.message}")
    return tuple(notes)


class CatalogLookup:
    """Finds marks and consents in an open workspace (read-only use)."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def __call__(self, payload_hex: str) -> dict | None:
        """The catalog row of the output marked with this payload (its fingerprint as a frame count), or None."""
        row = self._row(payload_hex)
        if row is None:
            return None
        blob = row.pop("fingerprint", None)
        row["fingerprint_frames"] = len(fingerprint.unpack(blob)) if blob else None
        row["consent_ids"] = json.loads(row.pop("consent_ids_json"))
        return row

    def thumbnails(self, payload_hex: str) -> fingerprint.Thumbnails | None:
        """The fingerprint stored when the output was marked; None for outputs marked before they were kept."""
        blob = (self._row(payload_hex) or {}).get("fingerprint")
        return fingerprint.unpack(blob) if blob else None

    def _row(self, payload_hex: str) -> dict | None:
        cursor = self.ws.conn.execute("SELECT * FROM marks WHERE payload = ?", (payload_hex,))
        row = cursor.fetchone()
        return None if row is None else dict(zip([column[0] for column in cursor.description], row, strict=True))

    def consent(self, consent_id: str, today: date, in_manifest: bool) -> ConsentCheck:
        try:
            record = get_consent(self.ws, consent_id)
        except ConsentError:
            return ConsentCheck(consent_id, "?", "?", "unknown", in_manifest)
        return ConsentCheck(record.id, record.identity, record.role, record.status(today), in_manifest)
