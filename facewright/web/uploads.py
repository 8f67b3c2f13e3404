"""Files sent through the browser: size-limited while they stream in, checked by their content (not their
name or the browser's word), stored under the workspace's uploads/<n>/ with a plain name. Nothing stays of a
refused upload."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from facewright import api

CHUNK = 1 << 20

# What each kind of upload may be, by leading bytes: (suffix, test on the first 16 bytes).
SIGNATURES: dict[str, tuple[str, ...]] = {
    "image": ("png", "jpg", "webp"),
    "video": ("mp4", "mov", "mkv", "avi"),
    "release": ("pdf", "png", "jpg"),
}


class UploadRefused(api.InputError):
    """An upload that is too large, empty, or not what it says it is."""


class UploadTooLarge(UploadRefused):
    http_status = 413


@dataclass(frozen=True)
class Stored:
    path: Path
    relative: str  # inside the workspace, POSIX
    kind: str  # the detected type's suffix
    width: int | None = None  # of its picture, as probed (None: a PDF)
    height: int | None = None


def safe_name(name: str, suffix: str) -> str:
    """A plain file name from a client's: letters, digits, dot, dash and underscore, the detected suffix."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name or "upload").stem).strip("_")[:64] or "upload"
    return f"{stem}.{suffix}"


def store(stream, name: str, kinds: tuple[str, ...], workspace: Path, limit_bytes: int) -> Stored:
    """Copy `stream` (a binary file object) into uploads/<n>/, refusing it unless it is one of `kinds` (keys
    of SIGNATURES) and at most `limit_bytes`; media is also probed, so a renamed text file is refused."""
    allowed = {suffix for kind in kinds for suffix in SIGNATURES[kind]}
    head = stream.read(16)
    found = api.sniff_type(head)
    if found not in allowed:
        raise UploadRefused(f"not {' or '.join(kinds)} by its content ({found or 'unknown type'})", path=name,
                            fix=f"send a {', '.join(sorted(allowed))} file")
    folder = api.upload_folder(workspace=workspace)
    path = folder / safe_name(name, found)
    partial = folder / f".{path.name}.partial"  # renamed into place once whole and checked: no half file is listed
    try:
        with partial.open("wb") as out:
            out.write(head)
            size = len(head)
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit_bytes:
                    raise UploadTooLarge(f"larger than the server's limit of {limit_bytes // 2**20} MB", path=name,
                                        fix="put the file in a folder the server allows (serve --allow DIR) and "
                                            "pick it there, or restart with a larger --max-upload-mb")
                out.write(chunk)
        if found != "pdf":  # a PNG header on garbage is refused here, typed, before anyone uses it
            info = api.probe(partial)  # (probe reports a damaged file in .problems; it raises only when unreadable)
            video = info.video
            if video is None or not (video.width and video.height) or (found in SIGNATURES["image"] and info.problems):
                raise UploadRefused(f"not a readable {found} file: {'; '.join(info.problems) or 'no picture in it'}",
                                    path=name, fix="re-export or re-copy the file and send it again")
        partial.replace(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    size = (video.width, video.height) if found != "pdf" else (None, None)
    return Stored(path, path.relative_to(workspace).as_posix(), found, *size)
