"""Marking: visible label + invisible watermark on every frame, then a signed C2PA manifest on the file.

The swap stage marks frames as it renders them (`FrameMarker`) and seals its encoded file (`seal`);
`mark_file` does both for any existing image or video. Order matters: the label is drawn first so the
watermark also covers it, and the manifest is signed last, over the final encoded bytes.
"""
from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from facewright import __version__
from facewright.config import VideoOptions
from facewright.errors import ProvenanceError, UnsupportedFormatError
from facewright.files import check_output, require_file, sha256_file
from facewright.media.image import IMAGE_SUFFIXES as READABLE_IMAGES
from facewright.media.image import Frame, read_image, write_image
from facewright.media.transcode import transcode
from facewright.media.video import VideoFrame
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import watermark
from facewright.provenance.c2pa import SUPPORTED, ManifestFacts, sign_file
from facewright.provenance.enforce import consent_ids_hash
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label, apply_label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".mov")
SALT_BYTES = 16


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

    @property
    def payload_hex(self) -> str:
        return f"{self.payload:016x}"

    def assertion(self) -> dict:
        """The org.facewright.provenance assertion: ids and hashes only, no personal data."""
        return {
            "version": __version__,
            "watermark": {"payload": self.payload_hex, "scheme": "facewright-watermark-v1"},
            "label": self.label.preset,
            "consent": {"salt": self.salt.hex(), "hashes": consent_ids_hash(self.consent_ids, self.salt)},
            "model": {"name": self.model, "sha256": self.model_sha256},
            **dict(self.extra),
        }


class FrameMarker:
    """Label + watermark for each frame of one output."""

    def __init__(self, plan: MarkPlan, kind: str):
        self.plan = plan
        self.kind = kind

    def __call__(self, image: Frame) -> Frame:
        return watermark.embed(apply_label(image, self.plan.label, self.kind), self.plan.payload)


def seal(unsigned: Path, output: Path, plan: MarkPlan, identity: SigningIdentity) -> Path:
    """Sign the encoded file `unsigned` into `output` with the plan's manifest (atomic)."""
    facts = ManifestFacts(facewright=plan.assertion(), parent=plan.parent, model=plan.model,
                          model_sha256=plan.model_sha256, title=output.name)
    sign_file(unsigned, output, facts, identity)
    return output


def mark_image(image: Frame, output: Path, plan: MarkPlan, identity: SigningIdentity) -> Path:
    """Write `image` (H x W x 3 RGB uint8) to `output` (PNG/JPEG) labelled, watermarked and signed (atomic)."""
    with tempfile.TemporaryDirectory(prefix=".facewright-mark-", dir=_existing(output.parent)) as tmp:
        unsigned = Path(tmp) / f"unsigned{output.suffix.lower()}"
        write_image(FrameMarker(plan, "image")(image), unsigned)
        return seal(unsigned, output, plan, identity)


def _existing(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def media_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise UnsupportedFormatError(f"cannot mark {suffix or 'suffix-less'} files", path=path,
                                 fix=f"write one of {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)} "
                                     "(C2PA cannot sign MKV or WebM)")


@dataclass(frozen=True)
class MarkResult:
    output: Path
    kind: str
    frames: int
    sha256: str
    payload_hex: str
    label: str


def mark_file(source: str | Path, output: str | Path, plan: MarkPlan, identity: SigningIdentity, *,
              options: VideoOptions = VideoOptions(), progress: ProgressFactory = no_progress) -> MarkResult:
    """Label, watermark and sign a copy of `source` at `output`; the source is never modified."""
    source = require_file(source)
    output = check_output(output, [source])
    kind = media_kind(output)
    source_kind = "image" if source.suffix.lower() in READABLE_IMAGES else "video"  # any video FFmpeg reads
    if kind != source_kind:
        raise ProvenanceError(f"cannot mark a {source_kind} into a {kind} file", path=output,
                              fix=f"give the output a {' or '.join(_suffixes(source_kind))} suffix")
    if output.suffix.lower() not in SUPPORTED:
        raise UnsupportedFormatError("C2PA cannot sign this format", path=output, fix="write MP4, MOV, PNG or JPEG")
    marker = FrameMarker(plan, kind)
    with tempfile.TemporaryDirectory(prefix=".facewright-mark-", dir=output.parent) as tmp:
        unsigned = Path(tmp) / f"unsigned{output.suffix.lower()}"
        if kind == "image":
            mark_image(read_image(source), output, plan, identity)
            frames = 1
        else:
            frames = transcode(source, unsigned, options=options, progress=progress,
                               frame_fn=lambda frame: marker(_image(frame))).frames
            seal(unsigned, output, plan, identity)
    return MarkResult(output, kind, frames, sha256_file(output), plan.payload_hex, plan.label.preset)


def _image(frame: VideoFrame) -> Frame:
    return frame.image


def _suffixes(kind: str) -> tuple[str, ...]:
    return IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES

