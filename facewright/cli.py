"""Command line: argument parsing -> facewright.api calls -> printed results. No pipeline logic here."""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict

from facewright import __version__, api
from facewright.errors import FacewrightError, OptionError
from facewright.media import MediaInfo
from facewright.progress import terminal_progress


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        return args.handler(args) or 0
    except FacewrightError as exc:
        return report(exc, debug)
    except KeyboardInterrupt:
        print("facewright: interrupted; finished outputs are kept, partial ones removed", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, not a traceback, unless --debug
        if debug:
            raise
        print(f"facewright: internal error: {type(exc).__name__}: {exc}\n"
              "  run again with --debug for the traceback, and report it", file=sys.stderr)
        return 1


def report(exc: FacewrightError, debug: bool) -> int:
    """Print a typed error as one message (with its fix); the traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    print(f"facewright: error: {exc}", file=sys.stderr)
    return exc.exit_code


def build_parser() -> argparse.ArgumentParser:
    # Shared flags are accepted before or after the command name (`facewright --debug probe x` == `probe x --debug`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS,
                        help="workspace folder (default: $FACEWRIGHT_WORKSPACE or ./facewright-workspace)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="facewright", parents=[common],
        description="Consent-first face swapping: every output is signed, watermarked and labelled.")
    parser.add_argument("--version", action="version", version=f"facewright {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler, help: str, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    command("init", cmd_init, "create a workspace (catalog + output folders), or upgrade an old one")

    sub = command("probe", cmd_probe, "print streams, duration, fps, frame count and problems of media files")
    sub.add_argument("files", nargs="+", metavar="FILE")
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")

    assets = commands.add_parser("assets", help="model files and sample media: list, fetch",
                                 description="model files and sample media, pinned by version and sha256")
    asset_commands = assets.add_subparsers(title="assets commands", metavar="ACTION")
    sub = command("list", cmd_assets_list, "list assets with license, size and cache state", asset_commands)
    sub.add_argument("--kind", choices=("model", "media"))
    sub = command("fetch", cmd_assets_fetch, "download, verify and cache assets (all by default)", asset_commands)
    sub.add_argument("names", nargs="*", metavar="NAME")
    sub.add_argument("--kind", choices=("model", "media"))
    sub.add_argument("--force", action="store_true", help="fetch again even if a verified copy is cached")

    bench = commands.add_parser("bench", help="speed benchmarks that print figures",
                                description="speed benchmarks that print figures")
    bench_commands = bench.add_subparsers(title="benchmarks", metavar="BENCH")
    sub = command("io", cmd_bench_io, "video decode and encode frames/s at 640x360 and 1280x720", bench_commands)
    sub.add_argument("--frames", type=int, default=120, help="frames per test (default: 120)")
    sub.add_argument("--sizes", default="640x360,1280x720", help="WxH list (default: 640x360,1280x720)")

    command("demo", cmd_demo, "run the pipeline as far as it exists on the bundled sample clips")
    return parser


def cmd_init(args: argparse.Namespace) -> int:
    root = api.init(getattr(args, "workspace", None))
    print(f"workspace ready: {root.resolve()}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            info = api.probe(path)
        except FacewrightError as exc:  # a batch goes on past one bad file
            failed = max(failed, report(exc, getattr(args, "debug", False)))
            continue
        print(json.dumps(_jsonable(asdict(info))) if args.json else format_probe(info))
    return failed


def format_probe(info: MediaInfo) -> str:
    duration = f"{info.duration:.3f} s" if info.duration is not None else "unknown duration"
    lines = [f"{info.path}  ({info.container.split(',')[0]}, {info.size_bytes / 1e6:.1f} MB, {duration})"]
    for s in info.streams:
        if s.kind == "video":
            rate = "variable frame rate" if s.variable_frame_rate else "constant frame rate"
            lines.append(f"  #{s.index} video {s.codec} {s.width}x{s.height} {s.fps or 0:.3f} fps, "
                         f"{s.frames} frames, {rate}, rotation {s.rotation}, time base {s.time_base}")
        elif s.kind == "audio":
            lines.append(f"  #{s.index} audio {s.codec} {s.sample_rate} Hz {s.channels} ch")
        else:
            lines.append(f"  #{s.index} {s.kind} {s.codec}")
    lines += [f"  problem: {p}" for p in info.problems] or ["  problems: none"]
    return "\n".join(lines)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def cmd_assets_list(args: argparse.Namespace) -> int:
    rows = api.list_assets(args.kind)
    width = max(len(a.name) for a, _, _ in rows)
    for asset, status, _ in rows:
        print(f"{asset.name:<{width}}  {asset.kind:<5}  {asset.size / 1e6:7.2f} MB  {status:<7}  "
              f"{asset.release.spec}  [{asset.license}]")
    cached = sum(1 for _, status, _ in rows if status == "ok")
    print(f"{cached}/{len(rows)} cached under {rows[0][2].parents[1] if rows else '-'}")
    return 0


def cmd_assets_fetch(args: argparse.Namespace) -> int:
    results = api.fetch_assets(args.names, kind=args.kind, force=args.force, progress=terminal_progress)
    for result in results:
        state = "fetched" if result.downloaded else "cached"
        if result.replaced_corrupt:
            state = "replaced a corrupt copy"
        print(f"{state:>8}  {result.asset.name}  sha256 ok  {result.path}")
    return 0


def cmd_bench_io(args: argparse.Namespace) -> int:
    try:
        sizes = tuple(tuple(int(v) for v in item.lower().split("x")) for item in args.sizes.split(","))
    except ValueError as exc:
        raise OptionError(f"--sizes {args.sizes!r} is not a list of WxH", fix="e.g. --sizes 640x360,1280x720") from exc
    results = api.bench_io(frames=args.frames, sizes=sizes, progress=terminal_progress)
    print("bench io: libx264 crf 18 yuv420p; decode = H.264 to RGB arrays")
    for result in results:
        print("  " + result.row())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    result = api.demo(getattr(args, "workspace", None), progress=terminal_progress)
    print("\nfacewright demo: done (the stages built so far: assets, workspace, media I/O)")
    for info in result.probes:
        print(format_probe(info))
    r = result.reencode
    print(f"\nre-encoded {r.frames} frames at {r.fps:.1f} frames/s, audio {'copied' if r.audio_copied else 'none'}")
    print(f"  video:       {r.output.resolve()}")
    print(f"  frame sheet: {result.sheet.resolve()}")
    print(f"  catalog:     {(result.workspace / 'catalog.sqlite').resolve()} (run {result.run_id})")
    return 0
