"""The public API. The CLI and the web UI call these functions and nothing deeper.

Each function takes the same option names as its CLI command's flags. None of them prints: progress goes
through the `progress` factory (see facewright.progress) and results are returned.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facewright import assets as _assets
from facewright.bench.extract import ExtractBench
from facewright.bench.extract import bench_extract as _bench_extract
from facewright.bench.io import IoResult
from facewright.bench.io import bench_io as _bench_io
from facewright.collect import report as _faceset
from facewright.collect.extract import ExtractReport
from facewright.collect.extract import extract as _extract
from facewright.config import ExtractOptions, build, to_dict
from facewright.media import MediaInfo, write_image
from facewright.media import probe as _probe
from facewright.progress import ProgressFactory, no_progress
from facewright.workspace import Workspace


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
        run_id = ws.start_run("extract", {"sources": [str(s) for s in sources], "identity": identity,
                                          **to_dict(resolved)})
        try:
            result = _extract(list(sources), identity, ws, resolved, progress)
        except BaseException as exc:
            ws.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        ws.finish_run(run_id)
        return result


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


DEMO_FACESETS = (("WolfgangLanger_Pexels.mp4", "demo-a"), ("single_face.mp4", "demo-b"))


@dataclass(frozen=True)
class DemoResult:
    workspace: Path
    extractions: tuple[ExtractReport, ...]
    reports: tuple[FacesetReport, ...]


def demo(workspace: str | Path | None = None, *, progress: ProgressFactory = no_progress) -> DemoResult:
    """The main job on the sample media, as far as the pipeline exists: fetch the models and sample clips,
    extract a faceset from each of the two sample videos (person A and person B), and report on both."""
    fetch_assets(progress=progress)
    root = init(workspace)
    extractions = tuple(extract([asset(video)], identity, workspace=root, progress=progress)
                        for video, identity in DEMO_FACESETS)
    reports = tuple(show_faceset(identity, workspace=root) for _, identity in DEMO_FACESETS)
    return DemoResult(root, extractions, reports)
