"""File safety: checks on input paths, atomic output writes, private files, hashing.

Inputs are never modified; an output appears at its final path only once it is complete. Personal data (consent
photos and records, face crops and masks, the catalog with its face embeddings: biometric data) is written
readable by its owner only: PRIVATE_FILE files in PRIVATE_DIR folders, each private from its creation.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from facewright.errors import DiskFullError, FacewrightError, InputNotFoundError, InvalidMediaError, OutputError
from facewright.locks import owner_tag, tag_alive

PRIVATE_FILE = 0o600  # owner read/write, as the signing keys
PRIVATE_DIR = 0o700

# Temporary names carry their writer's pid and host (locks.owner_tag), so that the next writer into a folder can
# remove what a killed process left there, and never what a live one is still writing.
_TEMP_FOLDER = re.compile(r"\.facewright-[a-z]+-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-")
_PARTIAL = re.compile(r"\..*\.(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]{8}\.partial")
_swept: set[Path] = set()
_writable: set[Path] = set()


def require_file(path: str | Path) -> Path:
    """Return `path` as a Path if it is a non-empty regular file, else raise a typed error."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such file", path=path, fix="check the path and its spelling")
    if path.is_dir():
        raise InputNotFoundError("is a folder, not a file", path=path, fix="give a file inside it")
    if path.stat().st_size == 0:
        raise InvalidMediaError("the file is empty (0 bytes)", path=path,
                                fix="re-export or re-copy the file; an interrupted copy leaves an empty file")
    return path


def check_output(output: str | Path, inputs: Iterable[str | Path]) -> Path:
    """Refuse, before any work: an output path that is one of the inputs (writing it would destroy an input),
    an existing folder, or a place where nothing can be written."""
    output = Path(output)
    if output.is_dir():
        raise OutputError("the output path is an existing folder", path=output,
                          fix=f"give a file name inside it (e.g. {output / 'NAME'}{output.suffix or '.EXT'}), "
                              "or another path")
    check_writable(output.parent)
    resolved = output.resolve()
    for item in inputs:
        item = Path(item)
        if item.resolve() == resolved or (item.exists() and output.exists() and os.path.samefile(item, output)):
            raise OutputError("the output path is an input; facewright never overwrites its inputs", path=output,
                              fix="choose another output file name")
    return output


@contextlib.contextmanager
def atomic_path(final: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    The temp file keeps the final suffix so that format-sniffing writers (PyAV, PIL) pick the same format.
    `private`: the file is PRIVATE_FILE from its creation, so the renamed file is too (no moment where another
    user could open it); else it has a plain file's mode.
    """
    final = Path(final)
    sweep_stale(make_folder(final.parent))
    tmp = _create_temp(final, PRIVATE_FILE if private else 0o666)
    try:
        yield tmp
        os.replace(tmp, final)
    except Exception as exc:
        if not disk_full(exc):
            raise
        tmp.unlink(missing_ok=True)  # first, so that the error tells the space there is without it
        raise disk_full_error(final) from exc
    finally:
        tmp.unlink(missing_ok=True)


def make_folder(folder: Path) -> Path:
    """`folder`, made with its parents if missing; OutputError (naming it) if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(folder, exc, "cannot create the output folder") from exc
    return folder


def _create_temp(final: Path, mode: int = 0o666) -> Path:
    """Create an empty, unique `.NAME.PID-HOST-XXXXXXXX.partialSUFFIX` beside `final` with `mode` minus the umask.

    Not mkstemp: its 0600 would stay on every renamed output, unreadable to the group and other users, where
    an output is meant to be shared (0666 minus the umask); private files ask for 0600 themselves.
    """
    while True:
        tmp = final.with_name(f".{final.stem}.{owner_tag()}-{secrets.token_hex(4)}.partial{final.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        except FileExistsError:
            continue  # another writer drew the same name: draw again
        except OSError as exc:
            raise _unwritable(final.parent, exc, file=final) from exc
        return tmp


def temp_folder(folder: Path, kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder `.facewright-KIND-PID-HOST-XXXXXXXX` in `folder` (made if missing), removed with its
    contents at the end of a `with` block (or by `cleanup()`). Ones that dead processes left there go first."""
    sweep_stale(make_folder(folder))
    try:
        return tempfile.TemporaryDirectory(prefix=f".facewright-{kind}-{owner_tag()}-", dir=folder)
    except OSError as exc:
        raise _unwritable(folder, exc) from exc


@contextlib.contextmanager
def staging(output: Path, kind: str) -> Iterator[Path]:
    """A temporary folder beside `output` (see temp_folder) for the files that become it, removed at the end.

    A disk that fills up while they are written is reported as what it is to the user: no room for `output`.
    """
    full: Exception | None = None
    with temp_folder(output.parent, kind) as tmp:
        try:
            yield Path(tmp)
        except Exception as exc:
            if not disk_full(exc):
                raise
            full = exc
    if full is not None:  # raised once the folder is gone, so that the error tells the space there is without it
        raise disk_full_error(output) from full


def check_writable(folder: Path) -> None:
    """OutputError unless files can be made in `folder` (or, where it does not exist yet, in the nearest folder
    above it, which will hold it). Tried for real, once per folder: permission bits and `os.access` say nothing
    of read-only mounts, and root passes them all."""
    folder = Path(os.path.abspath(folder))
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if existing in _writable:
        return
    if not existing.is_dir():
        raise OutputError("a file stands where the output folder should be", path=existing,
                          fix="choose an output path whose folders are folders")
    try:
        tmp = tempfile.NamedTemporaryFile(prefix=f".facewright-probe-{owner_tag()}-", dir=existing)
    except OSError as exc:
        raise _unwritable(existing, exc) from exc
    tmp.close()
    _writable.add(existing)


def sweep_stale(folder: Path) -> list[Path]:
    """Remove from `folder` the temporary files and folders of facewright processes that have died (killed, or
    the machine stopped); a live process's are kept. Once per folder per process; returns what it removed."""
    key = Path(os.path.abspath(folder))
    if key in _swept:
        return []
    _swept.add(key)
    try:
        entries = list(os.scandir(key))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMP_FOLDER.match(entry.name) or _PARTIAL.match(entry.name)
        if match is None or tag_alive(int(match["pid"]), match["host"]):
            continue
        with contextlib.suppress(OSError):  # another process may be sweeping the same folder
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it came from, is the disk (or the user's quota) running out of space.

    Writers wrap the OSError in their own errors (PyAV, c2pa), so the chain and, last, the text are looked at.
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_error(path: Path) -> DiskFullError:
    """The typed error for a write of `path` (a file, or a folder being made) that filled the disk, with the
    space left there."""
    folder = path if path.is_dir() else path.parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(f"the disk is full ({free} in {folder}); the partial file was removed", path=path,
                         fix="free space on that disk, or write the output to another disk, then run the command "
                             "again")


def _unwritable(folder: Path, exc: OSError, what: str = "cannot write in the output folder", *,
                file: Path | None = None) -> FacewrightError:
    """The typed error for `folder` refusing a new file (or folder): the disk is full, or it cannot be written."""
    if disk_full(exc):
        return disk_full_error(file or folder)
    return OutputError(f"{what} ({exc.strerror or exc})", path=folder,
                       fix="choose an output location you can write to (a read-only disk or folder cannot hold it)")


def private_dir(folder: str | Path, root: str | Path) -> Path:
    """Make `folder` and every folder between `root` (an existing folder, left as it is) and it PRIVATE_DIR.

    Existing ones are made private too: a faceset or consent folder of an older workspace is tightened the next
    time facewright writes into it.
    """
    folder, current = Path(folder), Path(root)
    try:
        for part in folder.relative_to(current).parts:
            current = current / part
            current.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            if stat.S_IMODE(current.stat().st_mode) != PRIVATE_DIR:
                os.chmod(current, PRIVATE_DIR)
    except OSError as exc:
        raise _unwritable(current, exc, "cannot create a private folder") from exc
    return folder


def numbered_folder(parent: Path) -> Path:
    """A new, private parent/<n>, n one past the highest there; a concurrent maker of the same n moves on."""
    parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    number = max((int(p.name) for p in parent.iterdir() if p.name.isdigit()), default=0)
    while True:
        number += 1
        try:
            (parent / str(number)).mkdir(mode=PRIVATE_DIR)
            return parent / str(number)
        except FileExistsError:
            continue


def private_file(path: str | Path) -> Path:
    """Create `path` empty as PRIVATE_FILE if it does not exist, else take the group's and others' access away.

    For files another program creates (SQLite's catalog): made here first, they keep this mode.
    """
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            with contextlib.suppress(OSError):  # another user's file, or a read-only disk: read, left as it is
                os.chmod(path, mode & ~0o077)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
