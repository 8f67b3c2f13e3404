"""Who is writing: this process as an owner (pid, host, start time), whether a recorded owner still lives, and
exclusive lock files that die with their process.

A SIGKILL, an out-of-memory kill or a power cut runs no cleanup. What such a process leaves behind (a run
still marked 'running', temporary files beside an output, a lock file) is recognized by its owner being
gone, never by its age: a long job that is alive is never taken for a dead one.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from facewright.errors import BusyError

try:
    import fcntl
except ImportError:  # Windows: no flock; locks are not taken there (the supported systems are Linux and macOS)
    fcntl = None

HOST = socket.gethostname()
HOST_TAG = hashlib.sha256(HOST.encode()).hexdigest()[:6]  # the host in temporary file names: short, name-safe
_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Owner:
    """A process that writes: `started` (clock ticks after boot, from /proc; None without /proc) tells a pid
    that was reused by a later process apart from the one recorded."""

    pid: int
    host: str
    started: int | None = None

    @classmethod
    def current(cls) -> Owner:
        return cls(os.getpid(), HOST, process_started(os.getpid()))

    def alive(self) -> bool:
        """False only where the owner is known to be gone. Another host's process (a shared folder) cannot be
        checked from here, so it counts as alive."""
        return self.host != HOST or pid_alive(self.pid, self.started)

    def describe(self) -> str:
        return f"process {self.pid}" + (f" on {self.host}" if self.host != HOST else "")


def owner_tag(pid: int | None = None) -> str:
    """`PID-HOSTTAG`: what temporary names carry so that a later process can tell whether their writer lives."""
    return f"{os.getpid() if pid is None else pid}-{HOST_TAG}"


def tag_alive(pid: int, host_tag: str) -> bool:
    """Whether the writer named by a temporary file's tag may still live (another host's: assumed so)."""
    return host_tag != HOST_TAG or pid_alive(pid)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses); None: no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def process_started(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22 of /proc/PID/stat); None without /proc."""
    fields = _stat_fields(pid) if _PROC else None
    return int(fields[19]) if fields else None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether process `pid` runs on this host (and, given `started`, is still the same process)."""
    if pid == os.getpid():
        return True
    if not _PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        return True
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":  # gone, or a zombie: ended and only waiting to be reaped
        return False
    return started is None or int(fields[19]) == started


class Lock:
    """An exclusive lock file held for the duration of a `with` block (fcntl.flock).

    A second holder is refused at once with a BusyError naming the process that holds it. The kernel drops
    the lock when its process ends, however it ends, so a killed run never blocks the next one. The file
    stays (deleting it would race with a process opening it); it names its holder while held.
    """

    def __init__(self, path: Path, what: str, fix: str):
        self.path, self.what, self.fix = Path(path), what, fix
        self._handle: IO[str] | None = None

    def __enter__(self) -> Lock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's life, closed in __exit__
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise BusyError(f"{self.what} is in use by {holder}", path=self.path.parent, fix=self.fix) from None
        handle.truncate(0)
        handle.write(json.dumps(asdict(Owner.current())) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            self._handle.close()  # closing drops the lock
            self._handle = None


def _holder(text: str) -> str:
    try:
        return Owner(**json.loads(text)).describe()
    except (ValueError, TypeError):
        return "another process"  # it has the lock but has not written its name yet
