"""Marking: visible label + invisible watermark on every frame, then a signed C2PA manifest on the file.

The swap stage marks frames as it renders them (`FrameMarker`) and seals its encoded file (`seal`);
`mark_file` does both for any existing image or video. Order matters: the label is drawn first so the
watermark also covers it, and the manifest is signed last, over the final encoded bytes. The marker also keeps
a fingerprint of every frame it marks (provenance.fingerprint), which `record_mark` stores with the output's
catalog row: `verify` compares it with the file in hand, so a watermark copied onto other content is caught.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from facewright import __version__
from facewright.config import VideoOptions
from facewright.errors import OptionError, UnsupportedFormatError
from facewright.files import check_output, require_file, sha256_file, staging
from facewright.media.image import Frame, read_image, write_image
from facewright.media.kind import MediaKind, media_kind
from facewright.media.transcode import transcode
from facewright.media.video import VideoFrame
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import fingerprint, watermark
from facewright.provenance.c2pa import ManifestFacts, sign_file
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label, apply_label
from facewright.workspace import Workspace, now

# What can be written and signed (C2PA cannot sign MKV or WebM), by suffix.
SIGNABLE = {".png": MediaKind.IMAGE, ".jpg": MediaKind.IMAGE, ".jpeg": MediaKind.IMAGE,
            ".mp4": MediaKind.VIDEO, ".mov": MediaKind.VIDEO}
SALT_BYTES = 16  # per output: two files under the same consent cannot be linked through equal hashes


@dataclass(frozen=True)
class MarkPlan:
    """Everything that goes into one output's provenance. `payload` links the file to its catalog record."""

    label: Label
    consent_ids: tuple[str, ...] = ()
    model: str | None = None
    model_sha256: str | None = None
    parent: Path | None = None  # the input medium, named in the manifest by hash only
    payload: int = field(default_factory=lambda: secrets.randbits(watermark.PAYLOAD_BITS))
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(SALT_BYTES))
    extra: tuple[tuple[str, str], ...] = ()  # more facts for the manifest (e.g. ("forced", "other faceset"))
    # Opt-in (MarkOptions.name_in_manifest): the output's file name and the model's name go into the manifest.
    # Off, the manifest names no file, person or host: a generic title, the model by its sha256 (names of files
    # and models are often people's names; the catalog keeps them either way).
    names: bool = False

    @property
    def payload_hex(self) -> str:
        return f"{self.payload:016x}"

    @property
    def model_label(self) -> str | None:
        """The model as the manifest names it: its name if names were chosen, else "sha256:" + 16 hex digits."""
        if self.names:
            return self.model
        return f"sha256:{self.model_sha256[:16]}" if self.model_sha256 else None

    def assertion(self) -> dict:
        """The org.facewright.provenance assertion: ids and hashes only, no personal data unless names were
        chosen (and then the choice is in it)."""
        return {
            "version": __version__,
            "watermark": {"payload": self.payload_hex, "scheme": "facewright-watermark-v1"},
            "label": self.label.preset,
            "consent": {"salt": self.salt.hex(), "hashes": consent_ids_hash(self.consent_ids, self.salt)},
            "model": {"name": self.model_label, "sha256": self.model_sha256},
            "name_in_manifest": self.names,
            **dict(self.extra),
        }


class FrameMarker:
    """Label + watermark for each frame of one output; the marked frames' thumbnails go to `recorder`."""

    def __init__(self, plan: MarkPlan, kind: MediaKind):
        self.plan = plan
        self.kind = kind
        self.recorder = fingerprint.Recorder()

    def __call__(self, image: Frame) -> Frame:
        marked = watermark.embed(apply_label(image, self.plan.label, self.kind), self.plan.payload)
        self.recorder.add(marked)
        return marked


def seal(unsigned: Path, output: Path, plan: MarkPlan, identity: SigningIdentity) -> Path:
    """Sign the encoded file `unsigned` into `output` with the plan's manifest (atomic). The title is the output's
    file name only if the plan chose names; otherwise c2pa's generic one."""
    facts = ManifestFacts(facewright=plan.assertion(), parent=plan.parent, model=plan.model_label,
                          model_sha256=plan.model_sha256, title=output.name if plan.names else None)
    sign_file(unsigned, output, facts, identity)
    return output


def mark_image(image: Frame, output: Path, plan: MarkPlan, identity: SigningIdentity) -> Path:
    """Write `image` (H x W x 3 RGB uint8) to `output` (PNG/JPEG) labelled, watermarked and signed (atomic)."""
    with staging(output, "mark") as tmp:
        unsigned = tmp / f"unsigned{output.suffix.lower()}"
        write_image(FrameMarker(plan, MediaKind.IMAGE)(image), unsigned)
        return seal(unsigned, output, plan, identity)


def signable_kind(path: Path) -> MediaKind:
    """The kind of file `path` names if facewright can write and sign it, else UnsupportedFormatError."""
    suffix = path.suffix.lower()
    if suffix not in SIGNABLE:
        raise UnsupportedFormatError(f"cannot mark {suffix or 'suffix-less'} files", path=path,
                                     fix=f"write one of {', '.join(SIGNABLE)} (C2PA cannot sign MKV or WebM)")
    return SIGNABLE[suffix]


def check_output_kind(input: Path, output: Path) -> MediaKind:
    """The kind of `output`, which must be signable and of the same kind as `input` (a video into a video)."""
    kind, wanted = signable_kind(output), media_kind(input)
    if kind != wanted:
        suffixes = " or ".join(s for s, k in SIGNABLE.items() if k == wanted)
        raise OptionError(f"a {wanted} cannot be written as {output.suffix}", path=output,
                          fix=f"give the output a {suffixes} suffix")
    return kind


@dataclass(frozen=True)
class MarkResult:
    output: Path
    kind: MediaKind
    frames: int
    sha256: str
    payload_hex: str
    label: str
    input_frames: int | None = None  # video: the frames the input holds; `frames` is those that could be decoded
    corrupt_packets: int = 0  # video: damaged packets of the input, skipped
    fingerprint: bytes | None = field(default=None, repr=False)  # packed thumbnails (provenance.fingerprint)

    @property
    def frames_lost(self) -> int:
        return max(0, (self.input_frames or 0) - self.frames)

    @classmethod
    def of(cls, output: Path, plan: MarkPlan, kind: MediaKind = MediaKind.IMAGE, frames: int = 1,
           marker: FrameMarker | None = None) -> MarkResult:
        """The result of marking `output` (already written) under `plan`.

        The fingerprint comes from `marker` (the frames it marked); without one, an image's is taken from the
        file, and a video has none (its frames are not decoded again).
        """
        if marker is not None:
            packed = marker.recorder.packed()
        elif kind == MediaKind.IMAGE:
            packed = fingerprint.pack([fingerprint.thumbnail(read_image(output))])
        else:
            packed = None
        return cls(output, kind, frames, sha256_file(output), plan.payload_hex, plan.label.preset, fingerprint=packed)


def mark_file(input: str | Path, output: str | Path, plan: MarkPlan, identity: SigningIdentity, *,
              options: VideoOptions = VideoOptions(), progress: ProgressFactory = no_progress) -> MarkResult:
    """Label, watermark and sign a copy of `input` at `output`; the input is never modified."""
    input = require_file(input)
    output = check_output(output, [input])
    kind = check_output_kind(input, output)
    marker = FrameMarker(plan, kind)
    if kind == MediaKind.IMAGE:
        mark_image(read_image(input), output, plan, identity)
        return MarkResult.of(output, plan)
    with staging(output, "mark") as tmp:
        unsigned = tmp / f"unsigned{output.suffix.lower()}"
        encoded = transcode(input, unsigned, options=options, progress=progress,
                            frame_fn=lambda frame: marker(_image(frame)))
        seal(unsigned, output, plan, identity)
    return dataclasses.replace(MarkResult.of(output, plan, kind, encoded.frames, marker),
                               input_frames=encoded.input_frames, corrupt_packets=encoded.corrupt_packets)


def _image(frame: VideoFrame) -> Frame:
    return frame.image


def record_mark(ws: Workspace, run_id: int, result: MarkResult, plan: MarkPlan, signer_fingerprint: str) -> int:
    """Record a marked output in the catalog (outputs + marks rows); return the output id.

    The marks row is what `verify` finds through a file's watermark id when its manifest was stripped; its
    `fingerprint` is what `verify` compares the file in hand with (NULL when the result has none).
    """
    output_id = ws.add_output(run_id, result.output, result.sha256, result.kind)
    parent_sha256 = sha256_file(plan.parent) if plan.parent else None
    ws.conn.execute(
        "INSERT INTO marks (payload, output_id, run_id, path, sha256, kind, label, consent_ids_json, consent_salt, "
        "signer_fingerprint, model, model_sha256, parent_sha256, created_at, fingerprint) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (result.payload_hex, output_id, run_id, str(result.output.resolve()), result.sha256, result.kind,
         result.label, json.dumps(list(plan.consent_ids)), plan.salt.hex(), signer_fingerprint, plan.model,
         plan.model_sha256, parent_sha256, now(), result.fingerprint))
    return output_id


def consent_ids_hash(ids: Iterable[str], salt: bytes) -> list[str]:
    """sha256(salt + id as ASCII) hex per consent id: shows which consents cover a file without naming anyone.

    `salt` (at least 16 random bytes, fresh per file and stored beside the hashes) keeps two files that use
    the same consent from being linked through equal hashes.
    """
    if len(salt) < SALT_BYTES:
        raise ValueError(f"salt must be at least {SALT_BYTES} bytes, got {len(salt)}")
    return [hashlib.sha256(salt + i.strip().lower().encode("ascii")).hexdigest() for i in ids]


def consent_id_matches(digest: str, consent_id: str, salt: bytes) -> bool:
    """True if `digest` is consent_ids_hash's hash of `consent_id` with `salt` (constant-time compare)."""
    return hmac.compare_digest(digest.lower(), consent_ids_hash([consent_id], salt)[0])
