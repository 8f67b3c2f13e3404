"""Helpers every command module shares: error reporting, group help, JSON-safe values."""
from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from facewright.errors import FacewrightError

Command = Callable[..., argparse.ArgumentParser]  # command(name, handler, help, parent) -> its parser


def report(exc: FacewrightError, debug: bool) -> int:
    """Print a typed error as one message (with its fix); the traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    print(f"facewright: error: {exc}", file=sys.stderr)
    return exc.exit_code


def _print_help(parser: argparse.ArgumentParser):
    """A handler for a command group given no action: its own help (listing the actions), exit 2."""
    def handler(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return handler


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
