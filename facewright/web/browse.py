"""Files a page may offer and a job may read: those under the folders the server was started to allow, and
the workspace's own uploads. A client names one by a reference, never by a path of its own making:

    allowed:<n>/<path inside allowed folder n>     ws:<path inside the workspace>

`resolve` turns a reference into a path through security.confine (no `..`, no absolute path, no symlink)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from facewright import api
from facewright.web.security import PathRefused, confine
from facewright.web.settings import ServerSettings

LISTED = 2000  # files listed per page at most: a huge allowed folder is picked by narrowing it
WORKSPACE_READABLE = ("uploads", "outputs", "previews")  # workspace folders a job may take its inputs from


@dataclass(frozen=True)
class Offered:
    ref: str
    name: str  # what the page shows
    kind: str  # image or video
    size: int


def media_kind(name: str) -> str | None:
    """image or video by the name's suffix; None for a file that is neither (or that a reference cannot name)."""
    if not api.is_media(name) or ":" in name:
        return None
    return str(api.media_kind(name))


def allowed_files(settings: ServerSettings) -> list[Offered]:
    """The media files under each allowed folder, symlinks left out, sorted by folder and path."""
    found: list[Offered] = []
    for number, root in enumerate(settings.allowed):
        for folder, dirs, names in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(folder, d)))
            for name in sorted(names):
                path = Path(folder) / name
                kind = media_kind(name)
                if kind is None or path.is_symlink():
                    continue
                relative = path.relative_to(root).as_posix()
                found.append(Offered(f"allowed:{number}/{relative}", f"{root.name}/{relative}", kind,
                                     path.stat().st_size))
                if len(found) >= LISTED:
                    return found
    return found


def uploaded_files(settings: ServerSettings, kind: str | None = None) -> list[Offered]:
    """Media uploaded through the pages, newest first."""
    uploads = settings.workspace / "uploads"
    found = []
    for path in sorted(uploads.glob("*/*"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                       reverse=True):
        found_kind = media_kind(path.name)
        if found_kind is None or path.is_symlink() or (kind and found_kind != kind):
            continue
        found.append(Offered(f"ws:{path.relative_to(settings.workspace).as_posix()}", f"upload: {path.name}",
                             found_kind, path.stat().st_size))
    return found


def resolve(settings: ServerSettings, ref: str, *, folders: tuple[str, ...] = WORKSPACE_READABLE) -> Path:
    """The file a reference names (see the module's docstring), or PathRefused; never a folder (a job reading a
    folder would follow the links inside it)."""
    if not isinstance(ref, str):
        raise PathRefused(f"not a file reference: {type(ref).__name__}", fix="pick the file from the page's list")
    path = _resolve(settings, ref, folders)
    if not path.is_file():
        raise PathRefused("not a file", path=ref, fix="pick a file from the page's list")
    return path


def _resolve(settings: ServerSettings, ref: str, folders: tuple[str, ...]) -> Path:
    scheme, _, rest = str(ref).partition(":")
    if scheme == "allowed":
        number, _, relative = rest.partition("/")
        if not (number.isascii() and number.isdigit()) or int(number) >= len(settings.allowed):
            raise PathRefused("no such allowed folder", path=ref, fix="pick the file from the page's list")
        return confine(settings.allowed[int(number)], relative)
    if scheme == "ws":
        if rest.split("/", 1)[0] not in folders:
            raise PathRefused(f"only the workspace's {', '.join(folders)} folders are readable here", path=ref,
                              fix="pick the file from the page's list")
        return confine(settings.workspace, rest)
    raise PathRefused("not a file reference (allowed:N/PATH or ws:PATH)", path=ref,
                      fix="pick the file from the page's list")
