"""What a `facewright serve` was started with: the workspace, the token, the folders it may read."""
from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_UPLOAD_MB = 2048  # a few minutes of 4K footage; larger clips are better picked from an allowed folder


@dataclass(frozen=True)
class ServerSettings:
    workspace: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    host: str = "127.0.0.1"
    port: int = 8765
    allowed: tuple[Path, ...] = ()  # folders whose files may be picked (resolved, symlinks followed once here)
    allowed_hosts: tuple[str, ...] = ()  # Host header names accepted besides loopback names and IP literals
    debug: bool = False  # error pages show the traceback
    max_upload_mb: int = MAX_UPLOAD_MB

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        return f"http://{shown}:{self.port}"

    @property
    def login_url(self) -> str:
        return f"{self.url}/login?token={self.token}"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False
