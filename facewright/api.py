"""The public API. The CLI and the web UI call these functions and nothing deeper.

Each function takes the same option names as its CLI command's flags. None of them prints: progress goes
through the `progress` factory (see facewright.progress) and results are returned.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facewright import assets as _assets
from facewright.bench.io import IoResult
from facewright.bench.io import bench_io as _bench_io
from facewright.collect import report as _faceset
from facewright.collect.extract import ExtractReport
from facewright.collect.extract import extract as _extract
from facewright.config import ExtractOptions, VideoOptions, build, to_dict
from facewright.files import sha256_file
from facewright.media import Frame, MediaInfo, VideoReader, write_image
from facewright.media import probe as _probe
from facewright.media.sheet import contact_sheet
from facewright.media.transcode import TranscodeResult, transcode
from facewright.progress import ProgressFactory, no_progress
from facewright.workspace import Workspace

DEMO_VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


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


@dataclass(frozen=True)
class DemoResult:
    workspace: Path
    run_id: int
    probes: tuple[MediaInfo, ...]
    reencode: TranscodeResult
    sheet: Path


def demo(workspace: str | Path | None = None, *, progress: ProgressFactory = no_progress) -> DemoResult:
    """The main job on the sample media, as far as the pipeline exists: fetch the sample clips, record
    them in a workspace, decode and re-encode one with its audio, and draw a frame sheet of both."""
    fetch_assets(DEMO_VIDEOS, progress=progress)
    videos = [asset(name) for name in DEMO_VIDEOS]
    options = VideoOptions()
    with Workspace.init(workspace) as ws:
        run_id = ws.start_run("demo", {"videos": DEMO_VIDEOS, "video": to_dict(options)})
        out = ws.outputs / "demo"
        try:
            probes = tuple(_probe(v) for v in videos)
            media_ids = [_record_media(ws, info) for info in probes]
            result = transcode(videos[0], out / f"{videos[0].stem}.reencoded.mp4", options=options,
                               progress=progress)
            ws.add_output(run_id, result.output, sha256_file(result.output), "video", media_ids[0])
            sheet = write_image(_frame_sheet(videos, progress), out / "frames.png")
            ws.add_output(run_id, sheet, sha256_file(sheet), "image")
        except BaseException as exc:
            ws.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        ws.finish_run(run_id)
        return DemoResult(ws.root, run_id, probes, result, sheet)


def _record_media(ws: Workspace, info: MediaInfo) -> int:
    video = info.video
    return ws.add_media(info.path, sha256_file(info.path), "video", width=video.width, height=video.height,
                        frames=video.frames, fps=video.fps, duration=info.duration,
                        has_audio=int(info.audio is not None))


def _frame_sheet(videos: list[Path], progress: ProgressFactory, per_video: int = 6) -> Frame:
    """Evenly spaced frames of each video, captioned with index and time."""
    images, captions = [], []
    for path in videos:
        total = _probe(path).video.frames
        wanted = {round(i * (total - 1) / (per_video - 1)) for i in range(per_video)}
        with VideoReader(path) as reader, progress(total=total, desc=f"sample {path.name}", unit="frame") as bar:
            for frame in reader:
                bar.update(1)
                if frame.index in wanted:
                    images.append(frame.image)
                    captions.append(f"{path.stem[:18]} #{frame.index} {frame.time:.2f}s")
    return contact_sheet(images, captions, columns=per_video)
