"""Sign C2PA manifests into finished media files, and read them back (c2pa-python 0.38.1, c2pa-rs 0.91.3).

What a facewright manifest holds:
  - claim_generator_info: facewright and its version;
  - a title naming no file ("facewright output (video)") unless the caller gives one (provenance.mark does only
    when names were chosen);
  - `c2pa.actions.v2`: `c2pa.created` (no parent), or `c2pa.opened` + `c2pa.edited` (with a parent: c2pa-rs
    refuses a first action other than created/opened, so the EDIT intent adds `c2pa.opened` linked to the
    parent ingredient). Our action carries the composite-with-trained-algorithmic-media source type and a
    softwareAgent naming facewright, its version and, when given, the model and its sha256;
  - the input medium as a `parentOf` ingredient made from JSON: title, format and sha256 only. Adding it from
    the file would copy the input's own manifest store into ours, thumbnails of the input face included;
  - `org.facewright.provenance`, the caller's dict, stored as a JSON assertion (see `_facewright_assertion`);
  - `cawg.training-mining`: AI training, generative training, inference and data mining all `notAllowed`.
Thumbnails are off: a default one adds ~125 KB and puts a picture of the swapped face into the manifest.

Settings: `c2pa.load_settings` is process-wide (and 0.38.1's Reader and Builder no longer read it), so every
sign and read builds its own `c2pa.Context` with our settings and closes it after: nothing leaks between calls
or into other c2pa users in the process. Remote manifest fetching and OCSP stay off (we work offline).

What 0.38.1 reports (measured on PNG, JPEG, WebP, MP4, MOV signed with a local CA):
  - `validation_state` "Valid" with failure code `signingCredential.untrusted` when the root is not trusted;
  - "Trusted" with no failure codes when the root is given as `trust.user_anchors`;
  - "Invalid" after one changed media byte: `assertion.dataHash.mismatch` (PNG/JPEG/WebP) or
    `assertion.bmffHash.mismatch` (MP4/MOV); a changed manifest byte gives `claimSignature.mismatch`,
    `assertion.hashedURI.mismatch` and kin, or a c2pa error, which we report as "invalid" with
    `manifest.unreadable` (our code, not c2pa's);
  - no manifest (or one stripped by re-saving): `Reader.try_create` returns None, our state "none";
  - bytes appended to an MP4 (or a file cut short): c2pa cannot walk the boxes ("asset could not be parsed")
    and validates nothing; we report "invalid" with `asset.unparseable` (our code), and `verify` decides from
    the frames whether the file is still a video (it plays: appended bytes) or not (cut short: bad input).
"""
from __future__ import annotations

import contextlib
import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import c2pa

from facewright import __version__
from facewright.errors import InvalidMediaError, ProvenanceError, UnsupportedFormatError
from facewright.files import atomic_path, check_output, require_file, sha256_file
from facewright.media.kind import sniff_type
from facewright.provenance.keys import SigningIdentity

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
ASSERTION = "org.facewright.provenance"
SUPPORTED = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
_NO_C2PA = {".mkv", ".webm"}  # Matroska/WebM: c2pa-rs has no handler for them
UNREADABLE = "manifest.unreadable"  # our code for a manifest store c2pa could not decode at all
UNPARSEABLE = "asset.unparseable"  # our code for a container c2pa could not walk (bytes appended, file cut short)
_TRAINING_MINING = ("cawg.ai_inference", "cawg.ai_generative_training", "cawg.ai_training", "cawg.data_mining")
_STATES = {"Valid": "valid", "Trusted": "trusted", "Invalid": "invalid"}
# c2pa-rs 0.91.3 wording for a container it cannot walk (truncated box, wrong magic): the file, not the manifest
_ASSET_UNPARSEABLE = "asset could not be parsed"
# mime -> container family: a source may only be signed into a destination of the same family
_FAMILY = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "video/mp4": "bmff",
           "video/quicktime": "bmff"}


@dataclass(frozen=True)
class ManifestFacts:
    """What one manifest says beyond the fixed parts: our assertion body, the input, the model."""

    facewright: dict  # the org.facewright.provenance assertion body (JSON-serialisable), stored verbatim
    parent: Path | None = None  # the input medium (parentOf ingredient, hash only); None -> c2pa.created
    model: str | None = None
    model_sha256: str | None = None
    title: str | None = None  # None: generic_title(destination); a file name can name a person


@dataclass(frozen=True)
class Certificate:
    """The signing certificate of a manifest, as c2pa reports it (names as "CN=..., O=...")."""

    subject: str
    issuer: str
    serial: str  # lowercase hex, no leading zeros: certificates may share every name, not a serial and issuer


@dataclass(frozen=True)
class C2paReport:
    """What c2pa says about a file's manifest store."""

    state: str  # "none" (no manifest) | "valid" | "trusted" | "invalid"
    codes: tuple[str, ...]  # failure status codes (e.g. "signingCredential.untrusted"); informational ones left out
    facewright: dict | None  # our assertion body, if present in the active manifest
    actions: tuple[dict, ...]  # the actions of the active manifest
    signer: str | None  # "<subject CN> (issued by <issuer O>)" as c2pa reports the signature
    generator: str | None  # claim generator, "name version"
    manifest_json: str | None  # the raw manifest store JSON (c2pa's Reader.json())
    certificate: Certificate | None = None  # the signing certificate, when the signature could be read

    @property
    def trusted(self) -> bool:
        """Signed under a trusted root (this machine's, or one given as an anchor), and valid."""
        return self.state == "trusted"

    @property
    def ours(self) -> bool:
        """A valid manifest that carries a facewright assertion (which anyone can write: see `trusted`)."""
        return self.state in ("valid", "trusted") and self.facewright is not None

    @property
    def foreign(self) -> bool:
        """A valid manifest of another tool: no facewright assertion in it."""
        return self.state in ("valid", "trusted") and self.facewright is None


# --- signing ----------------------------------------------------------------------------------------------


def sign_file(source: Path, destination: Path, facts: ManifestFacts, identity: SigningIdentity) -> None:
    """Write a signed copy of `source` (an already encoded file) to `destination`, atomically.

    `source` is never modified and must not be `destination`; both must be the same container
    (PNG, JPEG, WebP, or MP4/MOV).
    """
    source = require_file(source)
    destination = Path(destination)
    mime = _destination_mime(destination)
    check_output(destination, [source] if facts.parent is None else [source, facts.parent])
    _check_same_family(source, mime, destination)
    parent = _parent_ingredient(facts.parent) if facts.parent is not None else None
    manifest = _build_manifest(facts, facts.title or generic_title(mime), parent)
    with _c2pa_errors(destination, "signing failed"), _context() as context, \
            c2pa.Builder(manifest, context=context) as builder, _signer(identity) as signer:
        if parent is not None:
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)  # adds c2pa.opened linked to the parent ingredient
        with atomic_path(destination) as tmp, open(source, "rb") as src, open(tmp, "w+b") as out:
            builder.sign(signer, mime, src, out)


def generic_title(mime: str) -> str:
    """The manifest title that names no file: "facewright output (video)" or "(image)"."""
    return f"facewright output ({mime.split('/')[0]})"


def _destination_mime(destination: Path) -> str:
    """The MIME type c2pa writes for `destination`'s extension; ProvenanceError for a container C2PA lacks."""
    suffix = Path(destination).suffix.lower()
    if suffix in SUPPORTED:
        return SUPPORTED[suffix]
    if suffix in _NO_C2PA:
        raise ProvenanceError(f"C2PA cannot be embedded in {suffix[1:].upper()} files", path=destination,
                              fix="write MP4/MOV")
    raise ProvenanceError(f"facewright signs only {', '.join(sorted(SUPPORTED))} files", path=destination,
                          fix="write MP4/MOV for video, PNG/JPEG/WebP for images")


def _build_manifest(facts: ManifestFacts, title: str, parent: dict | None) -> dict:
    """The c2pa Builder definition for `facts` (pure: no file access)."""
    ingredients = {"ingredients": [parent]} if parent is not None else {}
    return {
        "claim_generator_info": [{"name": "facewright", "version": __version__}],
        "title": title,
        **ingredients,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [_action(facts, edited=parent is not None)]}},
            _facewright_assertion(facts.facewright),
            {"label": "cawg.training-mining",
             "data": {"entries": {entry: {"use": "notAllowed"} for entry in _TRAINING_MINING}}},
        ],
    }


def _parent_ingredient(parent: Path) -> dict:
    """A parentOf ingredient for `parent` from JSON: its format and sha256, nothing of its content.

    The title is generic on purpose: a file name ("alice_at_home.mp4") can name a person, and the manifest
    travels with the output; the hash alone lets the owner of the input prove which file it was.
    """
    parent = require_file(parent)
    return {"title": f"input{parent.suffix.lower()}", "format": _format_of(parent), "relationship": "parentOf",
            "metadata": {"org.facewright.sha256": sha256_file(parent)}}


def _action(facts: ManifestFacts, *, edited: bool) -> dict:
    agent = {"name": "facewright", "version": __version__}
    # softwareAgent is a generator-info map, which takes extra namespaced keys (c2pa-rs keeps them)
    if facts.model is not None:
        agent["org.facewright.model"] = facts.model
    if facts.model_sha256 is not None:
        agent["org.facewright.model_sha256"] = facts.model_sha256
    return {"action": "c2pa.edited" if edited else "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
            "softwareAgent": agent}


def _facewright_assertion(body: dict) -> dict:
    """Our assertion as a JSON (not CBOR) assertion, so its bytes in the file are exactly `json.dumps(body)`.

    As CBOR, c2pa-rs turns a flat list of numbers into a byte string ([300, 2] came back as b"\\x2c\\x02").
    """
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"the {ASSERTION} body is not plain JSON ({exc})",
                              fix="give only dicts, lists, strings, finite numbers, booleans and None") from exc
    return {"label": ASSERTION, "data": body, "kind": "Json"}


def _check_same_family(source: Path, mime: str, destination: Path) -> None:
    actual = _sniff_mime(source)
    if actual is None:
        raise InvalidMediaError("not a PNG, JPEG, WebP, MP4 or MOV file", path=source,
                                fix="sign the encoded output file itself")
    if _FAMILY[actual] != _FAMILY[mime]:
        raise ProvenanceError(f"{source.name} holds {actual} but the destination name asks for {mime}",
                              path=destination, fix=f"give the destination the extension of {source.name}")


@contextlib.contextmanager
def _signer(identity: SigningIdentity) -> Iterator[c2pa.Signer]:
    info = c2pa.C2paSignerInfo(identity.alg, identity.chain_pem, identity.key_pem, None)  # None: no TSA offline
    with c2pa.Signer.from_info(info) as signer:
        yield signer


# --- reading ----------------------------------------------------------------------------------------------


def read_file(path: Path, anchors_pem: bytes | None = None) -> C2paReport:
    """Read and validate the C2PA manifest store of `path`.

    `anchors_pem`: extra root certificates to trust (PEM); a manifest signed under one of them is "trusted".
    No manifest gives state "none"; a damaged one gives "invalid" with codes (UNPARSEABLE when the container
    itself cannot be walked: bytes appended, or cut short); a file that is not a PNG, JPEG, WebP, MP4 or MOV
    raises an InputError naming it.
    """
    path = require_file(path)
    mime = _readable_mime(path)
    with _context(anchors_pem) as context, open(path, "rb") as stream:
        try:
            reader = c2pa.Reader.try_create(mime, stream, context=context)
        except c2pa.C2paError as exc:
            return _unreadable(exc)
        if reader is None:
            return C2paReport("none", (), None, (), None, None, None)
        with reader:
            return _report(json.loads(reader.json()), json.loads(reader.crjson()), reader.json())


def _readable_mime(path: Path) -> str:
    """The container of `path` from its first bytes (not its name: a renamed file is still read right)."""
    mime = _sniff_mime(path)
    if mime is not None:
        return mime
    if path.suffix.lower() in _NO_C2PA or _head(path, 4) == b"\x1a\x45\xdf\xa3":  # EBML: Matroska/WebM
        raise UnsupportedFormatError("Matroska/WebM files cannot hold C2PA manifests", path=path,
                                     fix="write MP4/MOV to keep provenance")
    raise InvalidMediaError("not a PNG, JPEG, WebP, MP4 or MOV file", path=path,
                            fix="give the image or video file facewright wrote")


def _unreadable(exc: c2pa.C2paError) -> C2paReport:
    """"invalid": a manifest store c2pa found but could not decode, or a container it could not walk.

    Whether a container c2pa cannot walk is still a picture or a video is for the caller to find out: bytes
    appended to an MP4 stop c2pa, not a player.
    """
    code = UNPARSEABLE if _ASSET_UNPARSEABLE in str(exc) else UNREADABLE
    return C2paReport("invalid", (code,), None, (), None, None, None)


def _report(store: dict, crjson: dict, raw: str) -> C2paReport:
    label = store.get("active_manifest")
    active = store.get("manifests", {}).get(label, {})
    return C2paReport(state=_STATES.get(store.get("validation_state", ""), "invalid"), codes=_failure_codes(store),
                      facewright=_our_body(crjson, label), actions=tuple(_actions(active)),
                      signer=_signer_name(active.get("signature_info")), generator=_generator(active),
                      manifest_json=raw, certificate=_certificate(crjson, label))


def _failure_codes(store: dict) -> tuple[str, ...]:
    """Failure codes of the active manifest and of its ingredients, in c2pa's order, without repeats."""
    results = store.get("validation_results") or {}
    found = [entry.get("code") for entry in (results.get("activeManifest") or {}).get("failure", [])]
    for delta in results.get("ingredientDeltas", []):
        found += [entry.get("code") for entry in (delta.get("validationDeltas") or {}).get("failure", [])]
    found += [entry.get("code") for entry in store.get("validation_status", [])]
    return tuple(dict.fromkeys(code for code in found if code))


def _our_body(crjson: dict, label: str | None) -> dict | None:
    """Our assertion from the crJSON view, which shows a JSON assertion as stored (Reader.json() re-encodes it
    through CBOR and mangles flat lists of numbers)."""
    for manifest in crjson.get("manifests", []):
        if manifest.get("label") == label:
            body = manifest.get("assertions", {}).get(ASSERTION)
            return body if isinstance(body, dict) else None
    return None


def _certificate(crjson: dict, label: str | None) -> Certificate | None:
    """The active manifest's signing certificate from the crJSON view (Reader.json() leaves out the names' O)."""
    for manifest in crjson.get("manifests", []):
        if manifest.get("label") == label:
            info = (manifest.get("signature") or {}).get("certificateInfo") or {}
            if info.get("serialNumber"):
                return Certificate(_dn(info.get("subject")), _dn(info.get("issuer")), _hex(info["serialNumber"]))
    return None


def _hex(serial: object) -> str:
    """A serial number as lowercase hex without leading zeros (c2pa writes the DER bytes), else as given."""
    try:
        return f"{int(str(serial), 16):x}"
    except ValueError:
        return str(serial)


def _dn(name: dict | None) -> str:
    """{"CN": "x", "O": "y"} as "CN=x, O=y"."""
    return ", ".join(f"{key}={value}" for key, value in (name or {}).items())


def _actions(active: dict) -> list[dict]:
    actions: list[dict] = []
    for assertion in active.get("assertions", []):
        if assertion.get("label") in ("c2pa.actions", "c2pa.actions.v2"):
            actions += assertion.get("data", {}).get("actions", [])
    return actions


def _signer_name(info: dict | None) -> str | None:
    if not info:
        return None
    subject, issuer = info.get("common_name"), info.get("issuer")
    return f"{subject} (issued by {issuer})" if subject and issuer else subject or issuer


def _generator(active: dict) -> str | None:
    infos = active.get("claim_generator_info") or []
    if infos:
        return " ".join(str(infos[0][key]) for key in ("name", "version") if infos[0].get(key))
    return active.get("claim_generator")  # v1 claims carry a plain string


# --- shared -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _context(anchors_pem: bytes | None = None) -> Iterator[c2pa.Context]:
    """A fresh c2pa Context with our settings for one call; closed after it."""
    settings: dict = {
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},  # offline, and no tracking pings
    }
    if anchors_pem:
        # user_anchors adds to c2pa's trust list instead of replacing it (trust_anchors would replace it)
        settings["trust"] = {"user_anchors": anchors_pem.decode("ascii")}
    with c2pa.Context.from_dict(settings) as context:
        yield context


@contextlib.contextmanager
def _c2pa_errors(path: Path, what: str) -> Iterator[None]:
    """Turn a c2pa error into a ProvenanceError naming `path`."""
    try:
        yield
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"{what}: {exc}", path=path,
                              fix="check the signing identity (facewright keys show) and that the file is "
                                  "a complete PNG, JPEG, WebP, MP4 or MOV") from exc


SIGNED_MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4",
               "mov": "video/quicktime"}  # the containers we sign, by what media.kind.sniff_type finds


def _sniff_mime(path: Path) -> str | None:
    """MIME type from the file's first bytes, for the containers we sign; None for anything else."""
    return SIGNED_MIME.get(sniff_type(_head(path, 16)) or "")


def _head(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _format_of(path: Path) -> str:
    return _sniff_mime(path) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
