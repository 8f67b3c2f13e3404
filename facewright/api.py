"""The public API. The CLI and the web UI call these functions and nothing deeper.

Each function takes the same option names as its CLI command's flags. None of them prints: progress goes
through the `progress` factory (see facewright.progress) and results are returned.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facewright import assets as _assets
from facewright.bench.extract import ExtractBench
from facewright.bench.extract import bench_extract as _bench_extract
from facewright.bench.io import IoResult
from facewright.bench.io import bench_io as _bench_io
from facewright.bench.quality import QualityRow, quality_preset, read_rows
from facewright.bench.quality import bench_quality as _bench_quality
from facewright.bench.score_report import ScoreReport
from facewright.bench.score_run import run_score
from facewright.bench.swap import SwapBench
from facewright.bench.swap import bench_swap as _bench_swap
from facewright.bench.train import TrainBench
from facewright.bench.train import bench_train as _bench_train
from facewright.bench.watermark import WatermarkBench
from facewright.bench.watermark import bench_watermark as _bench_watermark
from facewright.collect import report as _faceset
from facewright.collect.extract import ExtractReport
from facewright.collect.extract import extract as _extract
from facewright.config import (
    ExtractOptions,
    MarkOptions,
    ScoreOptions,
    SwapOptions,
    TrainOptions,
    VideoOptions,
    build,
    to_dict,
)
from facewright.errors import ConsentError, FacewrightError, OptionError
from facewright.files import require_file
from facewright.media import MediaInfo, write_image
from facewright.media import probe as _probe
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import consent as _consent
from facewright.provenance import enforce as _enforce
from facewright.provenance import keys as _keys
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, MarkResult, mark_file
from facewright.provenance.verify import CatalogLookup, VerifyReport, verify_file
from facewright.swap.pipeline import SwapResult
from facewright.swap.run import SwapFailure
from facewright.swap.run import swap as _swap
from facewright.train import distributed as _distributed
from facewright.train.models import ModelInfo, create_model, describe, model_names
from facewright.train.presets import preset_options
from facewright.train.run import train_pair as _train_pair
from facewright.train.trainer import TrainResult
from facewright.workspace import CATALOG, Workspace, resolve_root

if TYPE_CHECKING:
    from facewright.demo import DemoResult


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


def bench_io(*, frames: int = 120, sizes: tuple[tuple[int, int], ...] = ((640, 360), (1280, 720)),
             progress: ProgressFactory = no_progress) -> list[IoResult]:
    """Decode and encode frames/s on real footage (the WolfgangLanger sample, resized)."""
    return _bench_io(asset("WolfgangLanger_Pexels.mp4"), sizes=sizes, frames=frames, progress=progress)


def extract(sources: Iterable[str | Path], identity: str, *, workspace: str | Path | None = None,
            progress: ProgressFactory = no_progress, **options: object) -> ExtractReport:
    """Extract the faces of `identity` from photos, folders, globs and videos into its faceset.

    `options` are ExtractOptions fields (every, fps, face_type, size, dedupe, reference, for_swap, ...).
    """
    resolved = build(ExtractOptions, flags=options)
    with Workspace.init(workspace) as ws:
        consent = consent_for_any_role(ws, identity)
        run_id = ws.start_run("extract", {"sources": [str(s) for s in sources], "identity": identity,
                                          "consent": consent.id, **to_dict(resolved)})
        try:
            result = _extract(list(sources), identity, ws, resolved, progress, consent.embedding)
        except BaseException as exc:
            ws.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        ws.finish_run(run_id)
        return result


def consent_for_any_role(ws: Workspace, identity: str) -> _consent.ConsentRecord:
    """The active consent of `identity` for either role: a faceset may later serve as source or target."""
    try:
        return _enforce.require_consent(ws, identity, "source")
    except ConsentError as first:
        try:
            return _enforce.require_consent(ws, identity, "target")
        except ConsentError:
            raise first from None


def list_facesets(*, workspace: str | Path | None = None) -> list[_faceset.FacesetSummary]:
    with Workspace.open(workspace) as ws:
        return _faceset.list_facesets(ws)


def bench_extract(*, video: str = "WolfgangLanger_Pexels.mp4", progress: ProgressFactory = no_progress,
                  **options: object) -> ExtractBench:
    """End-to-end extraction frames/s on a sample video (every frame), with the seconds per stage."""
    return _bench_extract(asset(video), build(ExtractOptions, flags=options), progress)


@dataclass(frozen=True)
class FacesetReport:
    summary: _faceset.FacesetSummary
    sheet: Path  # contact sheet PNG of a sample of kept faces
    poses: Path  # yaw-pitch coverage PNG


def show_faceset(name: str, *, workspace: str | Path | None = None, count: int = 48) -> FacesetReport:
    """Counts by reason, and a contact sheet and a pose-coverage plot written beside the faceset."""
    with Workspace.open(workspace) as ws:
        summary = _faceset.summarize(ws, name)
        sheet = write_image(_faceset.sheet_of_faces(ws, name, count), summary.folder / "contact_sheet.png")
        poses = write_image(_faceset.pose_plot(ws, name), summary.folder / "pose_coverage.png")
        return FacesetReport(summary, sheet, poses)


def prune_faceset(name: str, *, workspace: str | Path | None = None) -> _faceset.PruneResult:
    """Sync the catalog with the folder: crops deleted by hand are rejected, orphan files removed."""
    with Workspace.open(workspace) as ws:
        return _faceset.prune(ws, name)


def demo(workspace: str | Path | None = None, *, progress: ProgressFactory = no_progress) -> DemoResult:
    """The main job on the sample media, as far as the pipeline exists (see facewright.demo)."""
    from facewright.demo import run_demo  # the demo is built from this module's functions: imported late

    return run_demo(workspace, progress=progress)


# --- provenance: signing identity, consent, marking, verification --------------------------------------------


def keys_show(*, alg: str = "es256") -> _keys.SigningIdentity:
    """The local signing identity (root CA + leaf certificate), made on first use."""
    return _keys.load_identity(alg=alg)


def keys_export_anchor(destination: str | Path) -> Path:
    """Copy the signing root certificate to `destination`, for other people's trust lists."""
    return _keys.export_anchor(Path(destination))


def keys_import(chain: str | Path, key: str | Path, anchor: str | Path | None = None) -> _keys.SigningIdentity:
    """Sign with your own certificate chain and key (e.g. your organisation's CA) instead of the local one."""
    return _keys.import_identity(Path(chain), Path(key), Path(anchor) if anchor else None)


def consent_add(identity: str, *, photo: str | Path, role: str, purpose: str, channels: list[str], expires: str,
                display_name: str | None = None, release: str | Path | None = None, recorded_by: str | None = None,
                scope: str = "", workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """Record one person's consent, bound to the face in `photo`; stored in the catalog and signed as JSON."""
    with Workspace.init(workspace) as ws:
        return _consent.add_consent(ws, identity=identity, display_name=display_name or identity, role=role,
                                    purpose=purpose, channels=channels, expires=expires, photo=photo,
                                    release=release, recorded_by=recorded_by, scope=scope)


def consent_list(*, identity: str | None = None, workspace: str | Path | None = None) -> list[_consent.ConsentRecord]:
    """Every recorded consent (revoked ones included, marked as such)."""
    with Workspace.open(workspace) as ws:
        return _consent.list_consents(ws, identity)


def consent_show(consent_id: str, *, workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """One consent by id or unique id prefix, re-checked against its signed record file."""
    with Workspace.open(workspace) as ws:
        record = _consent.get_consent(ws, consent_id)
        _consent.verify_record_file(ws.root / _consent.CONSENTS / record.id / "record.json")
        return record


def consent_revoke(consent_id: str, *, reason: str, by: str | None = None,
                   workspace: str | Path | None = None) -> _consent.ConsentRecord:
    """Revoke a consent: recorded (and signed), never deleted; later uses are refused."""
    with Workspace.open(workspace) as ws:
        return _consent.revoke(ws, consent_id, reason, by)


def mark(source: str | Path, output: str | Path, *, consent: Iterable[str] = (), model: str | None = None,
         workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
         **options: object) -> MarkResult:
    """Label, watermark and C2PA-sign a copy of any image or video, and record it in the catalog.

    `consent`: ids of the active consents that cover the people shown (hashed into the manifest).
    `options`: MarkOptions (label, label_position) and VideoOptions (codec, crf, preset) fields.
    """
    marking, video = build(MarkOptions, flags=options), build(VideoOptions, flags=options)
    source = require_file(source)
    with Workspace.init(workspace) as ws:
        consent_ids = tuple(_active_consent(ws, c).id for c in consent)
        plan = MarkPlan(Label(marking.label, marking.label_position), consent_ids, model=model, parent=source)
        run_id = ws.start_run("mark", {"source": str(source), "output": str(output), "consent": list(consent_ids),
                                       "model": model, **to_dict(marking), **to_dict(video)})
        signer = _keys.load_identity()
        try:
            result = mark_file(source, output, plan, signer, options=video, progress=progress)
            ws.record_mark(run_id, result, plan, signer.fingerprint)
        except BaseException as exc:
            ws.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        ws.finish_run(run_id)
        return result


def _active_consent(ws: Workspace, consent_id: str) -> _consent.ConsentRecord:
    record = _consent.get_consent(ws, consent_id)
    if record.status() != "active":
        raise ConsentError(f"consent {record.id} ({record.identity}) is {record.status()}",
                           fix="record a new consent: facewright consent add ...")
    return record


def verify(paths: Iterable[str | Path], *, anchors: Iterable[str | Path] = (),
           workspace: str | Path | None = None) -> list[VerifyReport | Exception]:
    """A provenance report per file (or the error that file raised: a batch goes on past one bad file).

    Our own signing root is always a trust anchor; `anchors` adds more PEM roots. The workspace's catalog is
    read when one exists (never created here), to name the record and consents behind a mark.
    """
    anchor_pem = b"".join(require_file(a).read_bytes() for a in anchors)
    if _keys.has_identity():  # verifying must not make keys: a reader of files need not be a signer
        anchor_pem += _keys.load_identity(create=False).anchor_pem
    root = resolve_root(workspace)
    ws = Workspace.open(root) if (root / CATALOG).is_file() else None
    try:
        lookup = CatalogLookup(ws) if ws else None
        return [_verify_one(path, anchor_pem, lookup) for path in paths]
    finally:
        if ws:
            ws.close()


def _verify_one(path: str | Path, anchor_pem: bytes, lookup: CatalogLookup | None) -> VerifyReport | Exception:
    try:
        return verify_file(path, anchors_pem=anchor_pem, lookup=lookup)
    except FacewrightError as exc:
        return exc


def train(src: str, dst: str, *, name: str | None = None, resume: bool | str = False, preset: str | None = None,
          workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
          **options: object) -> TrainResult:
    """Train a pair model that puts A's face (faceset `src`) into B's footage (faceset `dst`).

    Needs a source-role consent for A and a target-role consent for B whose photos match the facesets.
    `options`: TrainOptions fields, over the `preset`'s (see facewright.train.presets). `resume`: True for the
    newest checkpoint of the model folder, or a path. Under torchrun every rank calls this; only rank 0
    records the run.
    """
    preset_values = preset_options(preset)
    resolved = build(TrainOptions, flags=options, config=preset_values)
    explicit = {key for key, value in options.items() if value is not None} | set(preset_values)
    main = _distributed.from_env().main
    with Workspace.open(workspace) as ws:
        run_id = ws.start_run("train", {"src": src, "dst": dst, "name": name, "resume": str(resume),
                                        **to_dict(resolved)}) if main else None
        try:
            result = _train_pair(ws, src, dst, resolved, resume=resume, name=name, explicit=explicit,
                                     progress=progress)
        except BaseException as exc:
            if run_id is not None:
                ws.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        if run_id is not None:
            ws.finish_run(run_id)
        return result


def swap(source: str | Path, output: str | Path | None = None, *, model: str | Path, resume: bool = False,
         workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
         **options: object) -> list[SwapResult | SwapFailure]:
    """Put the model's person A into a video, an image or every image of a folder; label, watermark, sign.

    Needs an active source consent for A and a target consent for the people whose faces are replaced, whose
    photo those faces match. `options`: SwapOptions, MarkOptions and VideoOptions fields. A folder's bad
    file is returned as a SwapFailure and the others go on.
    """
    known = {f.name for schema in (SwapOptions, MarkOptions, VideoOptions) for f in dataclasses.fields(schema)}
    if set(options) - known:
        raise OptionError(f"unknown swap option(s): {', '.join(sorted(set(options) - known))}",
                          fix=f"use: {', '.join(sorted(known))}")
    swapping, marking = build(SwapOptions, flags=options), build(MarkOptions, flags=options)
    video = build(VideoOptions, flags=options)
    with Workspace.open(workspace) as ws:
        return _swap(ws, source, output, model, swapping, marking, video, resume=resume, progress=progress)


def score(output: str | Path, *, source: str | Path, target_video: str | Path, report: str | Path | None = None,
          workspace: str | Path | None = None, progress: ProgressFactory = no_progress,
          **options: object) -> ScoreReport:
    """Measure a swap frame by frame against the footage it was made from: identity (to A, to the original),
    expression, pose, flicker, seams, background. Writes score.json, score.png and (for this workspace's own
    outputs under active consents) a marked worst.png into `report` (default: OUTPUT's folder, STEM.score/).

    `source`: A's faceset name in the workspace, or a photo or video of A. `options`: ScoreOptions fields.
    """
    known = {f.name for f in dataclasses.fields(ScoreOptions)}
    if set(options) - known:
        raise OptionError(f"unknown score option(s): {', '.join(sorted(set(options) - known))}",
                          fix=f"use: {', '.join(sorted(known))}")
    scoring = build(ScoreOptions, flags=options)
    root = resolve_root(workspace)
    ws = Workspace.open(root) if (root / CATALOG).is_file() else None  # scoring files needs no workspace
    try:
        return run_score(ws, output, target_video, source, scoring, report, progress)
    finally:
        if ws:
            ws.close()


def list_models(resolution: int = 128) -> list[ModelInfo]:
    """Every registered architecture with its parameter count and GFLOPs per sample at `resolution`."""
    return [describe(create_model(name, resolution)) for name in model_names()]


def bench_train(*, preset: str | None = None, progress: ProgressFactory = no_progress, steps: int = 20,
                **options: object) -> TrainBench:
    """Training samples/s (A+B), peak memory and the augmentation / model time split on real sample pixels.

    `options`: TrainOptions fields (None: not given) over the `preset`'s.
    """
    return _bench_train(asset("WolfgangLanger_Pexels.mp4"), asset("single_face.mp4"),
                        build(TrainOptions, flags=options, config=preset_options(preset)), steps=steps,
                        progress=progress)


def bench_swap(*, device: str = "auto", progress: ProgressFactory = no_progress) -> list[SwapBench]:
    """Swap frames/s end to end and ms per stage at 640x360 and 1280x720 (a demo-preset model, sample clips)."""
    return _bench_swap(asset("WolfgangLanger_Pexels.mp4"), asset("single_face.mp4"), device=device,
                       progress=progress)


def bench_quality(*, preset: str = "cpu", steps: int | None = None, minutes: float | None = None,
                  device: str = "auto", results: str | Path | None = None, workspace: str | Path | None = None,
                  progress: ProgressFactory = no_progress, **train_options: object) -> QualityRow:
    """The quality protocol on the sample pair: extract, train (fixed seed and budget), swap, score.

    The row is appended to `results` (default: <workspace>/bench/quality.jsonl) and the score's report folder
    is kept beside it. `train_options`: TrainOptions fields over the preset's training options.
    """
    return _bench_quality(asset("WolfgangLanger_Pexels.mp4"), asset("single_face.mp4"),
                          quality_results(results, workspace), preset=preset,
                          steps=steps, minutes=minutes, device=device, progress=progress, **train_options)


def quality_history(*, results: str | Path | None = None, workspace: str | Path | None = None) -> list[QualityRow]:
    """The rows of earlier `bench quality` runs, oldest first."""
    return read_rows(quality_results(results, workspace))


def quality_results(results: str | Path | None = None, workspace: str | Path | None = None) -> Path:
    """Where `bench quality` appends its rows: `results`, else <workspace>/bench/quality.jsonl."""
    return Path(results) if results else resolve_root(workspace) / "bench" / "quality.jsonl"


def bench_all(*, preset: str = "cpu", device: str = "auto", results: str | Path | None = None,
              workspace: str | Path | None = None,
              progress: ProgressFactory = no_progress) -> Iterator[tuple[str, list[str]]]:
    """io, extract, train and swap speed, then the quality row: (benchmark, its printed lines), one at a time."""
    yield "io", [row.row() for row in bench_io(progress=progress)]
    yield "extract", bench_extract(progress=progress).rows()
    train_preset = quality_preset(preset, None, None)[0]
    yield "train", [bench_train(preset=train_preset, device=device, progress=progress).row()]
    yield "swap", [row.row() for row in bench_swap(device=device, progress=progress)]
    yield "quality", [bench_quality(preset=preset, device=device, results=results, workspace=workspace,
                                    progress=progress).row()]


def bench_watermark(*, progress: ProgressFactory = no_progress) -> WatermarkBench:
    """Watermark robustness (bit accuracy after JPEG, resize, crop, H.264, brightness), false positives, speed."""
    unmarked = [asset(name) for name in WATERMARK_UNMARKED]
    return _bench_watermark(asset("astronaut.png"), asset("WolfgangLanger_Pexels.mp4"), unmarked, progress)


# Unmarked pictures for the false-positive count: photos with and without faces, then frames of the clips.
WATERMARK_UNMARKED = ("coffee.png", "chelsea.png", "rocket.jpg", "single_face.jpg", "multi_face.jpg",
                      "single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov",
                      "WolfgangLanger_Pexels.mp4")
