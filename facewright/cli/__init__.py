"""Command line: argument parsing -> facewright.api calls -> printed results. No pipeline logic here.

One module per group of commands (media, faces, provenance, train, swap, composite, batch, score, bench, demo, serve);
each registers its parsers and handlers.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from facewright import __version__
from facewright.cli import (
    batch,
    bench,
    composite,
    demo,
    faces,
    mask,
    media,
    provenance,
    score,
    serve,
    swap,
    train,
)
from facewright.cli.common import report
from facewright.cli.config import apply_config
from facewright.errors import FacewrightError


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        if getattr(args, "config", None):
            apply_config(args, argv, parser.command_paths)
        with _sigterm_as_interrupt():
            return args.handler(args) or 0
    except FacewrightError as exc:
        return report(exc, debug)
    except KeyboardInterrupt:
        print("facewright: interrupted; finished outputs are kept, partial ones removed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output left (`| head`): stop quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, not a traceback, unless --debug
        if debug:
            raise
        print(f"facewright: internal error: {type(exc).__name__}: {exc}\n"
              "  run again with --debug for the traceback, and report it", file=sys.stderr)
        return 1


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (kill, systemd, a closing container) like Ctrl-C for the duration of a command.

    Python's default for SIGTERM ends the process at once: with-blocks would not remove partial outputs
    and the run would stay 'running' in the catalog. Only the main thread may set handlers (not so for a
    caller running main() in a worker thread, which keeps the default).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    # Shared flags are accepted before or after the command name (`facewright --debug probe x` == `probe x --debug`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS,
                        help="workspace folder (default: $FACEWRIGHT_WORKSPACE or ./facewright-workspace)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE.toml",
                        help="option values from a TOML file, one [table] per command ([swap], [bench.train]); "
                             "flags given win over it")
    parser = argparse.ArgumentParser(
        prog="facewright", parents=[common],
        description="Consent-first face swapping: every output is signed, watermarked and labelled.")
    parser.add_argument("--version", action="version", version=f"facewright {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    paths: list[str] = []

    def command(name: str, handler, help: str, parent=commands) -> argparse.ArgumentParser:
        # No abbreviated flags: `--config` must see which flags were given, and `--thr` is fragile in scripts.
        sub = parent.add_parser(name, parents=[common], help=help, description=help, allow_abbrev=False)
        path = ".".join(sub.prog.split()[1:])  # "facewright bench train" -> "bench.train"
        sub.set_defaults(handler=handler, command_path=path, command_parser=sub)
        paths.append(path)
        return sub

    for module in (media, faces, provenance, train, mask, swap, composite, batch, score, bench, demo, serve):
        module.register(commands, command)
    parser.command_paths = paths
    return parser
