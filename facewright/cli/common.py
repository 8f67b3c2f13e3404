"""Helpers every command module shares: error reporting, group help, JSON-safe values."""
from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from facewright.cluster import Cluster, make_pool
from facewright.errors import FacewrightError
from facewright.workers import Pool

Command = Callable[..., argparse.ArgumentParser]  # command(name, handler, help, parent) -> its parser


def report(exc: FacewrightError, debug: bool) -> int:
    """Print a typed error as one message (with its fix); the traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    print(f"facewright: error: {exc}", file=sys.stderr)
    return exc.exit_code


class Decoded(Protocol):
    """A video result (swap, mark) that says how much of its input could be decoded."""

    frames: int
    input_frames: int | None
    corrupt_packets: int
    frames_lost: int


def warn_undecoded(input: Path, result: Decoded) -> None:
    """One warning line for an input whose damaged frames could not be decoded: the output lacks them.

    A warning, not a failure (exit 0): the output holds every frame that could be read, marked and signed.
    """
    if not (result.frames_lost or result.corrupt_packets):
        return
    print(f"facewright: warning: {input}: {result.frames_lost} frame(s) could not be decoded "
          f"({result.corrupt_packets} damaged packet(s) skipped); the output has {result.frames} of the input's "
          f"{result.input_frames} frames\n  fix: for every frame, re-export or re-copy the input and run again",
          file=sys.stderr)


def group(commands: argparse._SubParsersAction, name: str, help: str, description: str | None = None, *,
          title: str | None = None, metavar: str = "ACTION") -> argparse._SubParsersAction:
    """A command group (`facewright NAME ACTION ...`): given no action, it prints its own help and exits 2.
    Returns the group's subparsers, for `command(..., parent=)`."""
    parser = commands.add_parser(name, help=help, description=description or help)
    parser.set_defaults(handler=_print_help(parser))
    return parser.add_subparsers(title=title or f"{name} commands", metavar=metavar)


def _print_help(parser: argparse.ArgumentParser):
    """A handler for a command group given no action: its own help (listing the actions), exit 2."""
    def handler(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return handler


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (`--count 48`); anything else is a usage error (exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="local", choices=[c.value for c in Cluster],
                        help="where the chunks of a long video run: this machine's cores (local, --workers of them) "
                             "or a Ray cluster (ray: the one at $RAY_ADDRESS, else one started here; needs "
                             "pip install 'facewright[ray]')")


@contextlib.contextmanager
def cluster_pool(args: argparse.Namespace) -> Iterator[Pool | None]:
    """The pool of --cluster ray for the command, closed after it; None for local (the API makes its own,
    only when a video is long enough to split)."""
    if args.cluster == Cluster.LOCAL:
        yield None
        return
    pool = make_pool(args.workers, args.cluster, getattr(args, "device", None) or "auto")
    try:
        yield pool
    finally:
        pool.close()
