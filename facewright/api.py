"""The public API. The CLI and the web UI call these functions and nothing deeper.

Each function takes the same option names as its CLI command's flags, resolves them (an unknown name is an
OptionError), opens the workspace once and calls one stage. The signing identity is loaded here, once per
call, and handed to the stage that signs. None of them prints: progress goes through the `progress` factory
(see facewright.progress) and results are returned. Benchmarks (facewright.bench) and the demo
(facewright.demo) are clients of this module, as a user's script would be.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from facewright import assets as _assets
from facewright.collect import report as _faceset
from facewright.collect import review as _review
from facewright.collect.extract import ExtractReport
from facewright.collect.extract import extract as _extract
from facewright.config import (
    ExtractOptions,
    MarkOptions,
    MaskTrainOptions,
    OptionField,
    ScoreOptions,
    SwapOptions,
    TrainOptions,
    VideoOptions,
    build,
    build_all,
    describe_options,
    to_dict,
)
from facewright.errors import ConsentError, FacewrightError, InputError, OptionError
from facewright.files import numbered_folder, require_file
from facewright.media import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaInfo,
    MediaKind,
    is_media,
    media_kind,
    read_image,
    read_video,
    sniff_type,
    write_image,
)
from facewright.media import probe as _probe
from facewright.names import check_name
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import adopt as _adopt
from facewright.provenance import ca as _ca
from facewright.provenance import consent as _consent
from facewright.provenance import enforce as _enforce
from facewright.provenance import keys as _keys
from facewright.provenance import trust as _trust
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, MarkResult, mark_file, record_mark
from facewright.provenance.verify import CatalogLookup, VerifyReport, verify_file
from facewright.score.report import ScoreReport
from facewright.score.run import run_score
from facewright.swap.composite import composite as _composite
from facewright.swap.pipeline import SwapResult
from facewright.swap.run import SwapFailure
from facewright.swap.run import swap as _swap
from facewright.train import distributed as _distributed
from facewright.train import listing as _listing
from facewright.train.mask_model import StoredMasks, load_mask_model, mask_model_names, store_masks
from facewright.train.mask_trainer import MaskTrainResult
from facewright.train.mask_trainer import train_mask as _train_mask
from facewright.train.models import ModelInfo, create_model, describe, model_names
from facewright.train.presets import PRESETS, preset_options
from facewright.train.run import train_pair as _train_pair
from facewright.train.trainer import TrainResult
from facewright.workers import Pool
from facewright.workspace import CATALOG, Workspace, resolve_root
from facewright.workspace import history as _history
from facewright.workspace.jobs import JobBook, JobRecord, JobStatus

__all__ = [
    "ConsentError", "FacewrightError", "InputError", "OptionError", "JobBook", "JobRecord", "JobStatus", "Overview",
    "PreviewFrame", "check_name", "check_options", "consent_photo_faces", "face_crop", "face_page", "job_book",
    "list_outputs", "list_trained_models", "option_fields", "output_record", "overview", "remove_faces",
    "review_faceset", "swap_preview", "train_presets", "training_metrics", "upload_folder", "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES", "is_media", "media_kind", "sniff_type", "ExtractReport", "FacesetReport", "MarkResult",
    "MediaInfo", "ModelInfo", "ScoreReport", "SwapFailure", "SwapResult", "TrainResult", "VerifyReport", "asset",
    "composite", "consent_add", "consent_adopt_ledger", "consent_list", "consent_revoke", "consent_show",
    "consent_trust", "extract", "fetch_assets", "init", "keys_export_anchor", "keys_import", "keys_show", "keys_trust",
    "list_assets", "list_facesets", "list_mask_models", "list_models", "mark", "probe", "prune_faceset",
    "resolve_root", "revoked_behind", "score", "show_faceset", "swap", "train", "verify",
]


# --- workspace, media, assets ----------------------------------------------------------------------------------


def init(workspace: str | Path | None = None) -> Path:
    """Create (or upgrade) a workspace; return its folder."""
    with Workspace.init(workspace) as ws:
        return ws.root


def probe(path: str | Path) -> MediaInfo:
    """Streams, duration, fps, exact frame count, rotation and problems of a media file."""
    return _probe(path)


def list_assets(kind: str | None = None) -> list[tuple[_assets.Asset, str, Path]]:
    """Every registered asset with its cache status ('ok', 'missing', 'corrupt') and cache path."""
    return [(a, _assets.cached_status(a), _assets.cache_path(a)) for a in _assets.select(kind=kind)]


def fetch_assets(names: Iterable[str] = (), *, kind: str | None = None, force: bool = False,
                 progress: ProgressFactory = no_progress) -> list[_assets.FetchResult]:
    """Download, verify and cache assets (all, or by name / kind); cached verified files are kept."""
    return _assets.fetch(_assets.select(names, kind), force=force, progress=progress)


def asset(name: str) -> Path:
    """The verified local path of a registered asset, fetched on first use."""
    return _assets.asset_path(name)


# --- faces -----------------------------------------------------------------------------------------------------


def extract(inputs: Iterable[str | Path], identity: str, *, workspace: str | Path | None = None,
            progress: ProgressFactory = no_progress, pool: Pool | None = None, **options: object) -> ExtractReport:
    """Extract the faces of `identity` from photos, folders, globs and videos into its faceset.

    `options` are ExtractOptions fields (every, fps, face_type, size, dedupe, reference, for_swap, workers, ...).
    A long video is split into chunks on `pool` (default: a local pool of `workers` processes, one per core).
    """
    check_name(identity, "--identity")  # the faceset's folder name: checked before anything is made
    inputs = list(inputs)
    resolved = build(ExtractOptions, flags=options)
    with Workspace.init(workspace) as ws:
        consent = _enforce.consent_for_any_role(ws, identity, trust=_keys.load_trust())
        config = {"inputs": [str(i) for i in inputs], "identity": identity, "consent": consent.id,
                  **to_dict(resolved)}
        with ws.run("extract", config):
            report = _extract(inputs, identity, ws, resolved, progress, consent.embedding, pool)
            if resolved.mask_model:  # the stored masks leave out what the mask model says covers the face
                store_masks(ws, identity, load_mask_model(ws, resolved.mask_model), progress)
            return report


@dataclass(frozen=True)
class FacesetReport:
    summary: _faceset.FacesetSummary
    sheet: Path  # contact sheet PNG of a sample of kept faces
    poses: Path  # yaw-pitch coverage PNG


def list_facesets(*, workspace: str | Path | None = None) -> list[_faceset.FacesetSummary]:
    with Workspace.open(workspace) as ws:
        return _faceset.list_facesets(ws)


def show_faceset(name: str, *, workspace: str | Path | None = None, count: int = 48) -> FacesetReport:
    """Counts by reason, and a contact sheet and a pose-coverage plot written beside the faceset."""
    check_name(name, "faceset name")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise OptionError(f"count {count!r}: the contact sheet shows a whole number of faces, at least 1",
                          fix="e.g. 48")
    with Workspace.open(workspace) as ws:
        summary = _faceset.summarize(ws, name)
        sheet = write_image(_faceset.sheet_of_faces(ws, name, count), summary.folder / "contact_sheet.png",
                            private=True)  # faces, like the crops it shows
        poses = write_image(_faceset.pose_plot(ws, name), summary.folder / "pose_coverage.png", private=True)
        return FacesetReport(summary, sheet, poses)


def prune_faceset(name: str, *, workspace: str | Path | None = None) -> _faceset.PruneResult:
    """Sync the catalog with the folder: crops deleted by hand are rejected, orphan files removed."""
    check_name(name, "faceset name")
    with Workspace.open(workspace) as ws:
        return _faceset.prune(ws, name)


@dataclass(frozen=True)
class FacesetReview:
    summary: _faceset.FacesetSummary
    cells: dict[tuple[int, int], int]  # kept faces per pose cell (lower corner, degrees); empty cells absent
    reasons: dict[str, int]  # rejected faces per reason
    yaws: tuple[int, ...] = tuple(range(-_faceset.YAW_RANGE, _faceset.YAW_RANGE, _faceset.POSE_BIN))  # cell corners
    pitches: tuple[int, ...] = tuple(range(-_faceset.PITCH_RANGE, _faceset.PITCH_RANGE, _faceset.POSE_BIN))
    cell_size: int = _faceset.POSE_BIN  # degrees


def review_faceset(name: str, *, workspace: str | Path | None = None) -> FacesetReview:
    """What a reviewer of faceset `name` looks at first: its counts, its pose coverage by cell, its rejects."""
    check_name(name, "faceset name")
    with Workspace.open(workspace) as ws:
        return FacesetReview(_faceset.summarize(ws, name), _review.pose_cells(ws, name),
                             _review.reject_reasons(ws, name))


def face_page(name: str, *, workspace: str | Path | None = None, offset: int = 0, limit: int = 60,
              status: str = "kept", reason: str = "", cell: tuple[int, int] | None = None,
              min_sharpness: float | None = None, max_sharpness: float | None = None) -> _review.FacePage:
    """A page of faceset `name`'s faces that pass the filters (see collect.review.FaceFilter), in order."""
    check_name(name, "faceset name")
    where = _review.FaceFilter(status, reason, cell, min_sharpness, max_sharpness)
    with Workspace.open(workspace) as ws:
        return _review.face_page(ws, name, where, offset=max(0, offset), limit=max(1, min(limit, 500)))


def face_crop(name: str, face_id: int, *, workspace: str | Path | None = None) -> Path:
    """The aligned crop file of one face of faceset `name`."""
    check_name(name, "faceset name")
    with Workspace.open(workspace) as ws:
        return _review.crop_file(ws, name, face_id)


def remove_faces(name: str, face_ids: Iterable[int], *, workspace: str | Path | None = None) -> int:
    """Throw faces out of faceset `name` (rejected as removed by user, files deleted); return how many."""
    check_name(name, "faceset name")
    with Workspace.open(workspace) as ws:
        with ws.run("faceset remove", {"faceset": name, "faces": sorted(set(face_ids))}):
            return _review.remove_faces(ws, name, list(face_ids))


# --- provenance: signing identity, consent, marking, verification --------------------------------------------


SIGNER_NAME_ENV = "FACEWRIGHT_SIGNER_NAME"  # the signer's display name, used when the keys are first made


def keys_show(*, alg: str = "es256", name: str | None = None) -> _keys.SigningIdentity:
    """The local signing identity (root CA + leaf certificate), made on first use.

    `name`: the signer's display name in every manifest, for keys made now (default $FACEWRIGHT_SIGNER_NAME,
    else "facewright local signer", which names no user or host). Existing keys keep theirs: asking for
    another name for them is an OptionError.
    """
    existed = _keys.has_identity()
    identity = _signer(alg=alg, name=name)
    if existed and name is not None and _ca.common_name(identity.chain_pem) != _ca.check_display_name(name):
        raise OptionError(f"the signing identity already exists and signs as "
                          f"{_ca.common_name(identity.chain_pem)!r}; a display name is chosen when keys are made",
                          path=identity.folder,
                          fix=f"keep it, or move {identity.folder} aside and run `facewright keys show --name "
                              f"{name!r}` to make new keys (then give others the new root: facewright keys "
                              "export-anchor)")
    return identity


def _signer(*, alg: str = "es256", name: str | None = None) -> _keys.SigningIdentity:
    """The signing identity, made on first use with the display name given or set in $FACEWRIGHT_SIGNER_NAME.

    Read here, once per call: the stages below are handed the identity and never read the environment.
    """
    name = name if name is not None else os.environ.get(SIGNER_NAME_ENV) or None
    return _keys.load_identity(alg=alg, display_name=_ca.check_display_name(name) if name is not None else None)


def keys_export_anchor(destination: str | Path) -> Path:
    """Copy the signing root certificate to `destination`, for other people's trust lists."""
    return _keys.export_anchor(Path(destination))


def keys_import(chain: str | Path, key: str | Path, anchor: str | Path | None = None) -> _keys.SigningIdentity:
    """Sign with your own certificate chain and key (e.g. your organisation's CA) instead of the local one.

    The root it replaces stays trusted for consent records (keys/trusted.pem): the consents it signed stay valid.
    """
    return _keys.import_identity(Path(chain), Path(key), Path(anchor) if anchor else None)


def consent_trust() -> _trust.Trust:
    """What consent records are checked against: the signing root, the roots kept or trusted beside it, and the
    consent ledgers' heads. For callers of a stage itself (bench quality); the API's functions load it."""
    return _keys.load_trust()


def keys_trust(root: str | Path) -> str:
    """Trust consent records signed under another root CA (your own on another machine, your organisation's);
    return the root's subject."""
    return _keys.trust_anchor(Path(root)).subject.rfc4514_string()


def consent_add(identity: str, *, photo: str | Path, role: str, purpose: str, channels: list[str], expires: str,
                display_name: str | None = None, release: str | Path | None = None, recorded_by: str | None = None,
                scope: str = "", workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """Record one person's consent, bound to the face in `photo`; stored in the catalog and signed as JSON."""
    check_name(identity, "--identity")  # it names the person's faceset later
    with Workspace.init(workspace) as ws:
        signer = _signer()
        return _consent.add_consent(ws, identity=identity, display_name=display_name or identity, role=role,
                                    purpose=purpose, channels=channels, expires=expires, photo=photo,
                                    signer=signer, trust=_keys.load_trust(), release=release,
                                    recorded_by=recorded_by, scope=scope)


def consent_photo_faces(photo: str | Path) -> list[tuple[float, float, float, float]]:
    """The faces (x0, y0, x1, y1 in pixels) that consent_add would find in `photo`: it needs exactly one."""
    return [tuple(float(v) for v in d.box) for d in _consent.photo_faces(read_image(require_file(photo)))]


def consent_list(*, identity: str | None = None, workspace: str | Path | None = None) -> list[_consent.ConsentRecord]:
    """Every recorded consent (revoked ones included, marked as such)."""
    if identity is not None:
        check_name(identity, "--identity")
    with Workspace.open(workspace) as ws:
        return _consent.list_consents(ws, identity)


def consent_show(consent_id: str, *, workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """One consent by id or unique id prefix, re-checked against its signed files and the consent ledger."""
    with Workspace.open(workspace) as ws:
        record = _consent.get_consent(ws, consent_id)
        _enforce.check_recorded(ws, record, _keys.load_trust())
        return record


def consent_revoke(consent_id: str, *, reason: str, by: str | None = None,
                   workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """Revoke a consent: recorded (and signed), never deleted; later uses are refused."""
    with Workspace.open(workspace) as ws:
        signer = _signer()
        return _consent.revoke(ws, consent_id, reason, by, signer=signer, trust=_keys.load_trust())


def consent_adopt_ledger(*, workspace: str | Path | None = None) -> _adopt.Adopted:
    """Take this workspace's consent ledger as this machine's reference: after checking its chain, its trusted
    signatures and every consent's files against it (or building it from the signed records of a workspace
    older than the ledger), record its head with the keys. For a workspace copied or moved from elsewhere."""
    with Workspace.open(workspace) as ws:
        signer = _signer()
        return _adopt.adopt_ledger(ws, signer=signer, trust=_keys.load_trust())


def mark(input: str | Path, output: str | Path, *, consent: Iterable[str] = (), model: str | None = None,
         workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
         **options: object) -> MarkResult:
    """Label, watermark and C2PA-sign a copy of any image or video, and record it in the catalog.

    `consent`: ids of the active consents that cover the people shown (hashed into the manifest).
    `options`: MarkOptions (label, label_position) and VideoOptions (codec, crf, preset) fields.
    """
    marking, video = build_all((MarkOptions, VideoOptions), flags=options)
    input = require_file(input)
    with Workspace.init(workspace) as ws:
        trust = _keys.load_trust()
        consent_ids = tuple(_enforce.active_consent(ws, c, trust=trust).id for c in consent)
        plan = MarkPlan(Label(marking.label, marking.label_position), consent_ids, model=model, parent=input,
                        names=marking.name_in_manifest)
        signer = _signer()
        config = {"input": str(input), "output": str(output), "consent": list(consent_ids), "model": model,
                  **to_dict(marking), **to_dict(video)}
        with ws.run("mark", config) as run:
            result = mark_file(input, output, plan, signer, options=video, progress=progress)
            record_mark(ws, run.id, result, plan, signer.fingerprint)
        return result


def verify(paths: Iterable[str | Path], *, anchors: Iterable[str | Path] = (),
           workspace: str | Path | None = None) -> list[VerifyReport | Exception]:
    """A provenance report per file (or the error that file raised: a batch goes on past one bad file).

    Our own signing root is always a trust anchor; `anchors` adds more PEM roots (a manifest under any other
    root is "untrusted-signer", never "verified"); an anchor file that is not CA certificates in PEM is an
    InputError before any file is read. The workspace's catalog is read when one exists (never created here), to
    name the record and consents behind a mark and to compare the file with the fingerprint stored when that output
    was marked ("different-content" for a watermark copied onto other content).
    """
    anchor_pem = b"".join(_ca.pem(cert) for a in anchors for cert in _keys.read_anchor(Path(a)))
    if _keys.has_identity():  # verifying must not make keys: a reader of files need not be a signer
        anchor_pem += _keys.load_identity(create=False).anchor_pem
    with _catalog_if_any(workspace) as ws:
        lookup = CatalogLookup(ws) if ws else None
        return [_verify_one(path, anchor_pem, lookup) for path in paths]


@contextlib.contextmanager
def _catalog_if_any(workspace: str | Path | None) -> Iterator[Workspace | None]:
    """The workspace when it has a catalog, else None: reading files needs no workspace, and makes none."""
    root = resolve_root(workspace)
    if not (root / CATALOG).is_file():
        yield None
        return
    with Workspace.open(root) as ws:
        yield ws


def _verify_one(path: str | Path, anchor_pem: bytes, lookup: CatalogLookup | None) -> VerifyReport | Exception:
    try:
        return verify_file(path, anchors_pem=anchor_pem, lookup=lookup)
    except FacewrightError as exc:
        return exc


# --- train, swap, score ----------------------------------------------------------------------------------------


def train_presets() -> dict[str, dict[str, object]]:
    """The named option sets of `train --preset` (flags given beside one win over it)."""
    return {name: dict(values) for name, values in PRESETS.items()}


def list_models(resolution: int = 128) -> list[ModelInfo]:
    """Every registered architecture with its parameter count and GFLOPs per sample at `resolution`."""
    return [describe(create_model(name, resolution)) for name in model_names()]


def train(src: str, dst: str, *, name: str | None = None, resume: bool | str = False, preset: str | None = None,
          workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
          **options: object) -> TrainResult:
    """Train a pair model that puts A's face (faceset `src`) into B's footage (faceset `dst`).

    Needs a source-role consent for A and a target-role consent for B whose photos match the facesets.
    `options`: TrainOptions fields, over the `preset`'s (see facewright.train.presets). `resume`: True for the
    newest checkpoint of the model folder, or a path. Under torchrun every rank calls this; only rank 0
    records the run and signs previews.
    """
    for value, what in ((src, "--src"), (dst, "--dst"), *(((name, "--name"),) if name is not None else ())):
        check_name(value, what)
    preset_values = preset_options(preset)
    resolved = build(TrainOptions, flags=options, config=preset_values)
    explicit = {key for key, value in options.items() if value is not None} | set(preset_values)
    main = _distributed.from_env().main
    signer = _signer() if main else None
    with Workspace.open(workspace) as ws:
        config = {"src": src, "dst": dst, "name": name, "resume": str(resume), **to_dict(resolved)}
        with ws.run("train", config) if main else contextlib.nullcontext():
            return _train_pair(ws, src, dst, resolved, resume=resume, name=name, explicit=explicit,
                               progress=progress, signer=signer, trust=_keys.load_trust())


def train_mask(faceset: str, *, name: str | None = None, resume: bool = False, masks: str | Path | None = None,
               workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
               **options: object) -> MaskTrainResult:
    """Train an occlusion mask model on `faceset` (needs an active consent of its person), named `name`
    (default: the faceset's). `masks`: a folder of corrected masks (PNG per crop) that override the labels.
    `options`: MaskTrainOptions fields."""
    check_name(faceset, "FACESET")
    if name is not None:
        check_name(name, "--name")
    resolved = build(MaskTrainOptions, flags=options)
    with Workspace.open(workspace) as ws:
        config = {"faceset": faceset, "name": name, "resume": resume, "masks": str(masks or ""),
                  **to_dict(resolved)}
        with ws.run("mask train", config):
            return _train_mask(ws, faceset, resolved, name=name, resume=resume,
                               corrections=Path(masks) if masks else None, progress=progress,
                               signer=_signer() if resolved.preview_every else None, trust=_keys.load_trust())


def apply_mask_model(faceset: str, model: str, *, workspace: str | Path | None = None,
                     progress: ProgressFactory = no_progress) -> StoredMasks:
    """Rewrite `faceset`'s stored masks as hull and mask model combined, so a pair model trained on them
    learns to leave occluders out (what `extract --mask-model` does after extracting)."""
    check_name(faceset, "FACESET")
    with Workspace.open(workspace) as ws:
        with ws.run("mask apply", {"faceset": faceset, "model": model}):
            return store_masks(ws, faceset, load_mask_model(ws, model), progress)


def list_mask_models(*, workspace: str | Path | None = None) -> list[str]:
    with Workspace.open(workspace) as ws:
        return mask_model_names(ws)


def swap(input: str | Path, output: str | Path | None = None, *, model: str | Path, resume: bool = False,
         workspace: str | Path | None = None, progress: ProgressFactory = no_progress, pool: Pool | None = None,
         **options: object) -> list[SwapResult | SwapFailure]:
    """Put the model's person A into a video, an image or every image of a folder; label, watermark, sign.

    Needs an active source consent for A and a target consent for the people whose faces are replaced, whose
    photo those faces match. `options`: SwapOptions, MarkOptions and VideoOptions fields. A folder's bad
    file is returned as a SwapFailure and the others go on. A long video is swapped in chunks on `pool`
    (facewright.workers; default: a local pool of `workers` processes, one per core).
    """
    swapping, marking, video = build_all((SwapOptions, MarkOptions, VideoOptions), flags=options)
    if swapping.target:
        check_name(swapping.target, "--target")  # `model` is a path or a name: swap.model checks the name
    with Workspace.open(workspace) as ws:
        signer = _signer()
        return _swap(ws, input, output, model, swapping, marking, video, signer=signer, trust=_keys.load_trust(),
                     resume=resume, progress=progress, pool=pool)


PREVIEW_FOLDER = "previews"  # swap previews: previews/<n>/frames/frame_NNNNNN.png, and swapped/ the same names


@dataclass(frozen=True)
class PreviewFrame:
    index: int  # frame number in the video
    before: Path  # the frame as it is
    after: Path  # the frame swapped: labelled, watermarked, signed and recorded like any swapped image


def swap_preview(input: str | Path, *, model: str | Path, frames: int = 3, workspace: str | Path | None = None,
                 progress: ProgressFactory = no_progress, **options: object) -> list[PreviewFrame]:
    """Swap `frames` frames spread over video `input` (or the one image) as images, to judge the options before
    rendering the whole video. Each swapped frame is a marked output under the same consent checks as a swap.
    `options`: as swap's; those that only make sense for a whole video are ignored."""
    for name in ("preview", "patch", "render_only", "workers"):
        options.pop(name, None)
    if not 1 <= frames <= 12:
        raise OptionError(f"a preview takes 1-12 frames, not {frames}", fix="e.g. frames=3")
    with Workspace.open(workspace) as ws:
        folder = numbered_folder(ws.root / PREVIEW_FOLDER)
    try:  # one swap of the folder of stills: the model loads once, one run records them all
        stills = _preview_stills(require_file(input), frames, folder / "frames")
        results = swap(folder / "frames", folder / "swapped", model=model, workspace=workspace, progress=progress,
                       **options)
        failed = [r for r in results if isinstance(r, SwapFailure)]
        if failed:
            raise failed[0].error
    except BaseException:  # nothing is left of a refused preview, not even the frames it took
        shutil.rmtree(folder, ignore_errors=True)
        raise
    swapped = {r.input.name: r.output for r in results}
    return [PreviewFrame(index, before, swapped[before.name]) for index, before in stills]


def _preview_stills(input: Path, count: int, folder: Path) -> list[tuple[int, Path]]:
    """`count` frames spread evenly over the video (the image itself for an image), as PNGs in `folder`."""
    if media_kind(input) == MediaKind.IMAGE:
        return [(0, write_image(read_image(input), folder / "frame_000000.png", private=True))]
    total = max(1, _probe(input).video.frames or 1)
    wanted = {round(i * (total - 1) / max(1, count - 1)) if count > 1 else total // 2 for i in range(count)}
    stills = []
    for frame in read_video(input):
        if frame.index in wanted:
            stills.append((frame.index, write_image(frame.image, folder / f"frame_{frame.index:06d}.png",
                                                    private=True)))
        if len(stills) == len(wanted):
            break
    return stills


def composite(input: str | Path, output: str | Path, *, patch: str | Path, workspace: str | Path | None = None,
              progress: ProgressFactory = no_progress, **options: object) -> SwapResult:
    """Make the swapped video from the faces `swap(input, render_only=DIR)` rendered into `patch` (DIR): color,
    occlusion, blend, label, watermark, encode with the input's timestamps and audio, sign, record. The
    render's consents must still be active here; an edited track file is used and recorded as edited.
    `options`: MarkOptions and VideoOptions fields, and `device` (where a mask model named by the render runs).
    """
    device = str(options.pop("device", None) or "auto")
    marking, video = build_all((MarkOptions, VideoOptions), flags=options)
    with Workspace.open(workspace) as ws:
        signer = _signer()
        return _composite(ws, input, patch, output, marking, video, signer=signer, trust=_keys.load_trust(),
                          progress=progress, device=device)


def score(output: str | Path, *, source: str | Path, target_video: str | Path, report: str | Path | None = None,
          workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
          **options: object) -> ScoreReport:
    """Measure a swap frame by frame against the footage it was made from: identity (to A, to the original),
    expression, pose, flicker, seams, background. Writes score.json, score.png and (for this workspace's own
    outputs under active consents) a marked worst.png into `report` (default: OUTPUT's folder, STEM.score/).

    `source`: A's faceset name in the workspace, or a photo or video of A. `options`: ScoreOptions fields.
    """
    scoring = build(ScoreOptions, flags=options)
    if not Path(source).is_file():  # not a photo or video of A: the name of A's faceset
        check_name(str(source), "--source", fix="give the name of A's faceset (facewright faceset list) or the path "
                                                "of an existing photo or video of A")
    with _catalog_if_any(workspace) as ws:  # scoring files needs no workspace
        signer = _signer() if ws else None
        return run_score(ws, output, target_video, source, scoring, signer=signer,
                         trust=_keys.load_trust() if ws else None, report_dir=report, progress=progress)


# --- the workspace at a glance (the web UI's overview) -----------------------------------------------------------


@dataclass(frozen=True)
class Person:
    identity: str
    consents: list[_consent.ConsentRecord]  # newest last, revoked and expired ones included

    @property
    def active(self) -> list[_consent.ConsentRecord]:
        return [c for c in self.consents if c.status() == _consent.ConsentStatus.ACTIVE]


@dataclass(frozen=True)
class Overview:
    workspace: Path
    people: list[Person]
    facesets: list[_faceset.FacesetSummary]
    models: list[_listing.TrainedModel]
    outputs: list[_history.OutputRecord]
    runs: list[_history.RunRecord]


def overview(*, workspace: str | Path | None = None, recent: int = 10) -> Overview:
    """The workspace's people with their consents, facesets, models, newest outputs and newest runs."""
    with Workspace.init(workspace) as ws:
        consents, facesets = _consent.list_consents(ws, None), _faceset.list_facesets(ws)
        names = sorted({c.identity for c in consents} | {f.name for f in facesets})
        people = [Person(n, [c for c in consents if c.identity == n]) for n in names]
        return Overview(ws.root, people, facesets, _listing.trained_models(ws), _history.recent_outputs(ws, recent),
                        _history.recent_runs(ws, recent))


def list_trained_models(*, workspace: str | Path | None = None) -> list[_listing.TrainedModel]:
    with Workspace.open(workspace) as ws:
        return _listing.trained_models(ws)


def training_metrics(model: str, *, workspace: str | Path | None = None, points: int = 400) -> list[dict]:
    """The logged loss and speed of model `model`'s training, at most `points` of them, oldest first."""
    with Workspace.open(workspace) as ws:
        return _listing.training_metrics(ws.root / _listing.MODELS / check_name(model, "--model"), points)


def list_outputs(*, workspace: str | Path | None = None, limit: int = 50) -> list[_history.OutputRecord]:
    with Workspace.open(workspace) as ws:
        return _history.recent_outputs(ws, limit)


def revoked_behind(path: str | Path, *, workspace: str | Path | None = None) -> list[str]:
    """The revoked consents among those the catalog's output at `path` was made under (none for a file no output
    record names): what was made of a person who withdrew is no longer shown (the web UI's file routes)."""
    with Workspace.open(workspace) as ws:
        record = _history.output_by_path(ws, Path(path))
        if record is None or not record.consents:
            return []
        revoked = {c.id for c in _consent.list_consents(ws) if c.status() == _consent.ConsentStatus.REVOKED}
    return [c for c in record.consents if c in revoked]


def output_record(output_id: int, *, workspace: str | Path | None = None) -> _history.OutputRecord:
    with Workspace.open(workspace) as ws:
        found = _history.output_by_id(ws, output_id)
    if found is None:
        raise InputError(f"no output {output_id} in the catalog", path=resolve_root(workspace),
                         fix="pick one from the overview's outputs")
    return found


OPTION_SCHEMAS = {"extract": (ExtractOptions,), "train": (TrainOptions,), "mask train": (MaskTrainOptions,),
                  "swap": (SwapOptions, MarkOptions, VideoOptions), "score": (ScoreOptions,),
                  "mark": (MarkOptions, VideoOptions)}


def option_fields(command: str) -> list[OptionField]:
    """The options `command` (a key of OPTION_SCHEMAS) takes, with defaults and help: what its CLI flags are."""
    return describe_options(_schemas(command))


def _schemas(command: str) -> tuple[type, ...]:
    if command not in OPTION_SCHEMAS:
        raise OptionError(f"no options for {command!r}", fix=f"one of {', '.join(OPTION_SCHEMAS)}")
    return OPTION_SCHEMAS[command]


def check_options(command: str, options: dict[str, object]) -> dict[str, object]:
    """`options` resolved for `command` as its API function would resolve them: an unknown name or a bad value is
    an OptionError now, not when the work starts. Returns every option's value."""
    resolved = build_all(_schemas(command), flags=options)
    return {key: value for part in resolved for key, value in to_dict(part).items()}


UPLOAD_FOLDER = "uploads"  # workspace folder of files sent through the web UI: uploads/<n>/NAME


def upload_folder(*, workspace: str | Path | None = None) -> Path:
    """A new, private folder for one uploaded file, inside the workspace."""
    return numbered_folder(init(workspace) / UPLOAD_FOLDER)


def job_book(*, workspace: str | Path | None = None) -> JobBook:
    """The web UI's job queue in the workspace's catalog (the workspace is made if new)."""
    return JobBook(init(workspace))
