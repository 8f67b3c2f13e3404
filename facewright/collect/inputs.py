"""Turning command-line inputs (files, folders, globs) into a list of media files, and frame sampling."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from facewright.errors import InputNotFoundError
from facewright.media.image import IMAGE_SUFFIXES
from facewright.media.kind import MediaKind, is_media, media_kind
from facewright.media.video import VIDEO_SUFFIXES


@dataclass(frozen=True)
class MediaFile:
    path: Path
    kind: MediaKind


def expand_inputs(items: list[str | Path]) -> list[MediaFile]:
    """Files as given; folders searched recursively (media suffixes only); globs expanded. Sorted, unique.

    A named file with an unknown suffix is kept as a video (the decoder decides); a pattern or folder that
    matches nothing is an error naming it.
    """
    found: dict[Path, MediaFile] = {}
    for item in items:
        for path in _expand_one(str(item)):
            found.setdefault(path.resolve(), MediaFile(path, media_kind(path)))
    return sorted(found.values(), key=lambda s: str(s.path))


def _expand_one(item: str) -> list[Path]:
    path = Path(item).expanduser()
    if path.is_dir():
        media = [p for p in sorted(path.rglob("*")) if p.is_file() and is_media(p) and not p.name.startswith(".")]
        if not media:
            raise InputNotFoundError("the folder holds no images or videos", path=path,
                                     fix=f"media suffixes: {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}")
        return media
    if any(ch in item for ch in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file()]
        if not matches:
            raise InputNotFoundError("the pattern matches no file", path=path, fix="check the pattern and quote it")
        return matches
    return [path]  # existence and content are checked when it is read, with a typed error


def frame_step(video_fps: float | None, every: int = 1, fps: float = 0.0) -> int:
    """Use every Nth frame: `every`, or coarser so that at most `fps` frames per second are used."""
    step = max(1, every)
    if fps > 0 and video_fps:
        step = max(step, round(video_fps / fps))
    return step
