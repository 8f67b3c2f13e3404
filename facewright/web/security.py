"""Who may use the server and what it may touch.

- Every route but the login needs the token: as the HttpOnly, SameSite=Strict cookie the login sets, or in
  the X-Facewright-Token header. A request that changes anything needs the header too, which a cross-site
  form or image cannot send.
- The Host header must be a loopback name, an IP literal or a name given with --allow-host: a DNS-rebinding
  page (evil.example resolving to 127.0.0.1) is refused before the token is even looked at.
- Paths come from the client only as parts relative to the workspace or to a folder allowed at start; `..`,
  absolute paths and symlinks anywhere along them are refused (confine).
"""
from __future__ import annotations

import hmac
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import Path as PathParam

from facewright import api
from facewright.web.settings import LOOPBACK_NAMES, ServerSettings, is_ip_literal

SQLITE_INT_MAX = 2**63 - 1  # a client's id or offset past it names no row: bad input, not an OverflowError later
RowId = Annotated[int, PathParam(ge=0, le=SQLITE_INT_MAX)]  # a catalog row's id in a route's path

COOKIE = "facewright_token"  # + the port: cookies are not kept apart by port, two servers' must not collide
HEADER = "x-facewright-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/login", "/static/style.css")  # reachable without the token (the login page); a wrong Host is refused


class PathRefused(api.InputError):
    """A path the server will not read or serve: outside its folders, through a symlink, or malformed."""


def host_allowed(host_header: str | None, settings: ServerSettings) -> bool:
    if not host_header:
        return False
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    if host.startswith("[") and "]" in host:
        host = host[1:host.index("]")]
    host = host.lower()
    return host in LOOPBACK_NAMES or is_ip_literal(host) or host in {h.lower() for h in settings.allowed_hosts}


def cookie_name(settings: ServerSettings) -> str:
    return f"{COOKIE}_{settings.port}"


def token_matches(given: str | None, settings: ServerSettings) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), settings.token.encode())


def confine(root: Path, relative: str) -> Path:
    """`relative` (POSIX, as a client sends it) inside `root`, or PathRefused.

    Refused: empty, absolute, a drive or backslash, a `..` or `.` part, a NUL, and a symlink at any step from
    `root` down (a link inside an allowed folder could point anywhere)."""
    if not relative or "\\" in relative or "\0" in relative or relative.startswith("/"):
        raise PathRefused("not a relative path inside the server's folders", path=relative,
                          fix="pick the file from the page's lists")
    parts = PurePosixPath(relative).parts
    if any(part in ("..", ".") or ":" in part for part in parts):
        raise PathRefused("a path with '..', '.' or ':' parts is refused", path=relative,
                          fix="pick the file from the page's lists")
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise PathRefused("the path goes through a symlink; the server does not follow links", path=relative,
                              fix="copy the file into an allowed folder, or start the server with its real folder")
    if not path.exists():
        raise api.InputError("no such file", path=relative, fix="reload the page: it may have been removed")
    return path


def relative_to(root: Path, path: Path) -> str | None:
    """`path` as a POSIX path relative to `root`, or None when it lies elsewhere."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
