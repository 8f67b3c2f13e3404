"""Typed errors. Each names the file it is about and the fix, so the CLI can print one clear message.

Exit codes: 2 for bad user input (InputError and its kin), 3 for missing consent, 1 for everything else.
"""
from __future__ import annotations

from pathlib import Path


class FacewrightError(Exception):
    """Base class. `path` is the file the error is about; `fix` tells the user what to do."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path is not None else self.message
        return f"{text}\n  fix: {self.fix}" if self.fix else text

    def __reduce__(self) -> tuple:
        # Errors cross processes (a worker's error is raised in the driver): pickle the fields, not the text,
        # so the driver gets the same type with its path, fix and a subclass's own fields.
        return _restore, (type(self), dict(self.__dict__))


def _restore(cls: type[FacewrightError], fields: dict) -> FacewrightError:
    error = cls.__new__(cls)
    error.__dict__.update(fields)
    error.args = (str(error),)
    return error


class InputError(FacewrightError):
    """The user gave something we cannot use: a path, a file or an option."""

    exit_code = 2


class InputNotFoundError(InputError):
    """A path that does not exist, or a folder where a file is expected."""


class InvalidMediaError(InputError):
    """A file that is not media we can decode (empty, corrupt, text renamed .mp4)."""


class NoVideoStreamError(InvalidMediaError):
    """A media file with no video stream (audio only, or a subtitle file)."""


class TruncatedMediaError(InvalidMediaError):
    """A video that ends before its own index says it should; what was decodable was decoded."""

    def __init__(self, message: str, *, decoded_frames: int, expected_frames: int | None, **kw):
        self.decoded_frames = decoded_frames
        self.expected_frames = expected_frames
        super().__init__(message, **kw)


class UnsupportedFormatError(InputError):
    """A file in a format we do not read or write."""


class NoDeviceError(InputError):
    """A command that measures a GPU, on a machine without one."""


class ImageTooLargeError(InputError):
    """An image over the pixel limit (decoding it would take unbounded memory)."""


class OutputError(InputError):
    """An output path we must not write: it equals an input, or its folder cannot be made."""


class DiskFullError(FacewrightError):
    """The disk filled up while writing an output; the partial file was removed.

    Not an InputError: no input is at fault, and a batch must stop rather than fail every next file the same way.
    """

    exit_code = 2  # the user's disk, not a crash: the fix is theirs (free space, or write elsewhere)


class WorkerLostError(FacewrightError):
    """A worker process (local or on a cluster) died on every try of its chunk: killed, out of memory, lost."""


class BusyError(InputError):
    """Another live facewright process holds what this command would write (a model being trained)."""


class NoFaceError(InputError):
    """No usable face where one is needed (a source, a reference photo)."""


class OptionError(InputError):
    """A wrong option value or a bad config file."""


class PatchError(InputError):
    """A render folder (`swap --render-only`) that cannot be composited: unfinished, made from another input,
    or a track file that does not decode to the frames it should hold."""


class WorkspaceError(FacewrightError):
    """A workspace that is missing, newer than this program, or damaged."""

    exit_code = 2  # the --workspace (or $FACEWRIGHT_WORKSPACE) the user gave: bad input, not a crash


class AssetError(FacewrightError):
    """A model file or test medium that cannot be fetched."""


class AssetIntegrityError(AssetError):
    """A file whose sha256 differs from the pinned one: refused, never used."""


class ConsentError(FacewrightError):
    """No recorded, unexpired, unrevoked consent covers this person, role and face."""

    exit_code = 3  # distinct from bad input: the files are fine, the permission is missing


class ProvenanceError(FacewrightError):
    """Signing, watermarking or labelling failed, or a signing key/certificate is unusable."""


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded (damaged, truncated, not ours); the good ones are kept."""


class DeviceMemoryError(FacewrightError):
    """The accelerator ran out of memory; the message names a batch size that should fit."""
