"""The workspace `facewright bench web` times the web UI's pages on: one faceset of at least MIN_FACES kept faces.

Built once into a cache folder and reused while it still holds the faceset: person A's sample clip, every frame
(dedupe 0), and a mirrored copy of the clip (another file, so more rows; a re-sampling of the same file would
only replace the rows of the frames it shares). The timing itself lives in facewright.web.bench: benchmarks sit
below the web layer.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.config import VideoOptions
from facewright.demo import demo_consent
from facewright.errors import InputError
from facewright.media import probe, read_video
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress
from facewright.workspace import resolve_root

FACESET = "bench-web"
MIN_FACES = 500
SIZE = 64  # crop size: the pages show thumbnails; larger crops only make the build slower
CACHE = "web-workspace"  # under <workspace>/bench/, beside the other benches' results
MARKER = "bench-web.json"  # in the cache folder: what built it (a folder without it is never removed)
PROTOCOL = 1


def cache_folder(cache: str | Path | None = None, workspace: str | Path | None = None) -> Path:
    return Path(cache) if cache else resolve_root(workspace) / "bench" / CACHE


def kept_faces(root: Path, name: str = FACESET) -> int:
    return api.face_page(name, workspace=root, limit=1).total


def bench_workspace(cache: str | Path | None = None, *, workspace: str | Path | None = None,
                    min_faces: int = MIN_FACES, progress: ProgressFactory = no_progress) -> tuple[Path, str, bool]:
    """The cached workspace (built if missing or stale) and its faceset's name; the last value says whether it
    was reused."""
    folder = cache_folder(cache, workspace)
    marker = folder / MARKER
    root = folder / "ws"
    if marker.is_file():
        made = json.loads(marker.read_text())
        if made.get("protocol") == PROTOCOL and _usable(root, min_faces):
            return root, FACESET, True
        shutil.rmtree(folder)
    elif folder.exists() and any(folder.iterdir()):
        raise InputError("the bench's cache folder holds files it did not make", path=folder,
                         fix="give an empty or new folder with --cache")
    _build(folder, root, min_faces, progress)
    marker.write_text(json.dumps({"protocol": PROTOCOL, "min_faces": min_faces, "faces": kept_faces(root)}))
    return root, FACESET, False


def _usable(root: Path, min_faces: int) -> bool:
    try:
        return kept_faces(root) >= min_faces
    except (api.FacewrightError, OSError):
        return False


def _build(folder: Path, root: Path, min_faces: int, progress: ProgressFactory) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    clip = api.asset(SAMPLE_A)
    demo_consent(root, clip, FACESET)
    api.extract([clip], FACESET, workspace=root, dedupe=0, size=SIZE, progress=progress)
    if kept_faces(root) < min_faces:
        mirrored = _mirrored(clip, folder / "mirrored.mp4")
        api.extract([mirrored], FACESET, workspace=root, dedupe=0, size=SIZE, progress=progress)
    found = kept_faces(root)
    if found < min_faces:
        raise InputError(f"the bench's faceset holds {found} faces, fewer than {min_faces}", path=root,
                         fix=f"ask for fewer faces (--min-faces {found})")


def _mirrored(clip: Path, path: Path) -> Path:
    """`clip` flipped left to right: the same person, another file and other crops."""
    info = probe(clip).video
    with VideoWriter(path, width=info.width, height=info.height, fps=info.fps,
                     options=VideoOptions(crf=16, preset="veryfast")) as writer:
        for frame in read_video(clip):
            writer.write(np.ascontiguousarray(frame.image[:, ::-1]))
    return path
