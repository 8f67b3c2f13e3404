"""File safety: checks on input paths, atomic output writes, hashing.

Inputs are never modified; an output appears at its final path only once it is complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from facewright.errors import InputNotFoundError, InvalidMediaError, OutputError


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
    """Refuse an output path that is one of the inputs (writing it would destroy an input)."""
    output = Path(output)
    resolved = output.resolve()
    for item in inputs:
        item = Path(item)
        if item.resolve() == resolved or (item.exists() and output.exists() and os.path.samefile(item, output)):
            raise OutputError("the output path is an input; facewright never overwrites its inputs", path=output,
                              fix="choose another output file name")
    return output


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    The temp file keeps the final suffix so that format-sniffing writers (PyAV, PIL) pick the same format.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", path=final.parent,
                          fix="choose a writable output location") from exc
    tmp = _create_temp(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _create_temp(final: Path) -> Path:
    """Create an empty, unique `.NAME.XXXXXXXX.partialSUFFIX` beside `final`, with a plain file's permissions.

    Not mkstemp: its 0600 would stay on the renamed output, unreadable to the group and other users, where
    a plain open gives 0666 minus the umask.
    """
    while True:
        tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.partial{final.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue  # another writer drew the same name: draw again
        except OSError as exc:
            raise OutputError(f"cannot write in the output folder ({exc.strerror})", path=final.parent,
                              fix="choose a writable output location") from exc
        return tmp


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
