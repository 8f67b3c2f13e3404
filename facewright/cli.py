"""Command line: argument parsing -> facewright.api calls -> printed results. No pipeline logic here."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict

from facewright import __version__, api
from facewright.bench.io import check_bench_options
from facewright.collect.extract import ExtractReport
from facewright.config import ExtractOptions, add_options
from facewright.errors import FacewrightError, InvalidMediaError, OptionError
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
        with _sigterm_as_interrupt():
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
    assets.set_defaults(handler=_print_help(assets))
    asset_commands = assets.add_subparsers(title="assets commands", metavar="ACTION")
    sub = command("list", cmd_assets_list, "list assets with license, size and cache state", asset_commands)
    sub.add_argument("--kind", choices=("model", "media"))
    sub = command("fetch", cmd_assets_fetch, "download, verify and cache assets (all by default)", asset_commands)
    sub.add_argument("names", nargs="*", metavar="NAME")
    sub.add_argument("--kind", choices=("model", "media"))
    sub.add_argument("--force", action="store_true", help="fetch again even if a verified copy is cached")

    bench = commands.add_parser("bench", help="speed benchmarks that print figures",
                                description="speed benchmarks that print figures")
    bench.set_defaults(handler=_print_help(bench))
    bench_commands = bench.add_subparsers(title="benchmarks", metavar="BENCH")
    sub = command("io", cmd_bench_io, "video decode and encode frames/s at 640x360 and 1280x720", bench_commands)
    sub.add_argument("--frames", type=int, default=120, help="frames per test (default: 120)")
    sub.add_argument("--sizes", default="640x360,1280x720", help="WxH list (default: 640x360,1280x720)")

    sub = command("extract", cmd_bench_extract, "end-to-end extraction frames/s on a sample video, per stage",
                  bench_commands)
    sub.add_argument("--video", default="WolfgangLanger_Pexels.mp4", help="a registered sample video")

    sub = command("extract", cmd_extract, "extract aligned faces of one person from photos, folders, globs and "
                                          "videos into a faceset")
    sub.add_argument("sources", nargs="+", metavar="SRC", help="image or video files, folders, or quoted globs")
    sub.add_argument("--identity", required=True, help="the person's name: the faceset is named after it")
    add_options(sub, ExtractOptions)

    faceset = commands.add_parser("faceset", help="facesets: list, show, prune",
                                  description="facesets: list, show, prune")
    faceset.set_defaults(handler=_print_help(faceset))
    faceset_commands = faceset.add_subparsers(title="faceset commands", metavar="ACTION")
    command("list", cmd_faceset_list, "every faceset with its counts", faceset_commands)
    sub = command("show", cmd_faceset_show, "counts by reason, a contact sheet and a pose-coverage plot",
                  faceset_commands)
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--count", type=int, default=48, help="faces on the contact sheet (default: 48)")
    sub = command("prune", cmd_faceset_prune, "sync the catalog after crops were deleted by hand; remove "
                                              "leftover files", faceset_commands)
    sub.add_argument("name", metavar="NAME")

    command("demo", cmd_demo, "run the pipeline as far as it exists on the bundled sample clips")
    return parser


def _print_help(parser: argparse.ArgumentParser):
    """A handler for a command group given no action: its own help (listing the actions), exit 2."""
    def handler(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return handler


def cmd_init(args: argparse.Namespace) -> int:
    root = api.init(getattr(args, "workspace", None))
    print(f"workspace ready: {root.resolve()}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Describe every file; exit 2 if any could not be read or has a problem, so scripts can check it."""
    failed = 0
    for path in args.files:
        try:
            info = api.probe(path)
        except FacewrightError as exc:  # a batch goes on past one bad file
            failed = max(failed, report(exc, getattr(args, "debug", False)))
            continue
        print(json.dumps(_jsonable(asdict(info))) if args.json else format_probe(info))
        for problem in info.problems:
            print(f"facewright: problem: {info.path}: {problem}", file=sys.stderr)
            failed = max(failed, InvalidMediaError.exit_code)
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
    check_bench_options(args.frames, sizes)  # before the sample clip is fetched or decoded
    results = api.bench_io(frames=args.frames, sizes=sizes, progress=terminal_progress)
    print("bench io: libx264 crf 18 yuv420p; decode = H.264 to RGB arrays")
    for result in results:
        print("  " + result.row())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    result = api.demo(getattr(args, "workspace", None), progress=terminal_progress)
    print("\nfacewright demo: done (built so far: assets, workspace, media I/O, face extraction)")
    for extraction, report in zip(result.extractions, result.reports, strict=True):
        print(format_extract(extraction))
        print(format_faceset(report))
    print(f"catalog: {(result.workspace / 'catalog.sqlite').resolve()}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExtractOptions)}
    report = api.extract(args.sources, args.identity, workspace=getattr(args, "workspace", None),
                         progress=terminal_progress, **options)
    print(format_extract(report))
    return 2 if any(s.error for s in report.sources) else 0


def format_extract(report: ExtractReport) -> str:
    lines = [f"faceset {report.faceset}: {report.folder.resolve()}"]
    for s in report.sources:
        if s.error:
            lines.append(f"  {s.path.name}: skipped, {s.error}")
        elif s.skipped:
            lines.append(f"  {s.path.name}: already extracted with these options")
        else:
            reasons = ", ".join(f"{n} {r}" for r, n in s.rejected.most_common()) or "none"
            corrupt = f", {s.corrupt_frames} corrupt frames skipped" if s.corrupt_frames else ""
            lines.append(f"  {s.path.name}: {s.frames_with_face}/{s.frames} frames with a face, kept {s.kept}, "
                         f"rejected: {reasons}{corrupt}")
    if report.other_identities:
        lines.append(f"  other people found and rejected: {len(report.other_identities)} identities "
                     f"({', '.join(map(str, report.other_identities))} faces); use --reference to choose")
    lines.append(f"  faceset totals: {_counts(report.counts)}  ({report.seconds:.1f} s)")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    kept = counts.get("kept", 0)
    rejected = ", ".join(f"{n} {r}" for r, n in counts.items() if r != "kept")
    return f"kept {kept}" + (f"; rejected: {rejected}" if rejected else "")


def cmd_faceset_list(args: argparse.Namespace) -> int:
    facesets = api.list_facesets(workspace=getattr(args, "workspace", None))
    for s in facesets:
        print(f"{s.name:<20} {s.face_type:<10} {s.size:>4} px  kept {s.kept:>6}  rejected {sum(s.rejected.values()):>6}"
              f"  sources {len(s.sources)}")
    if not facesets:
        print("no facesets yet: facewright extract SRC... --identity NAME")
    return 0


def cmd_faceset_show(args: argparse.Namespace) -> int:
    report = api.show_faceset(args.name, workspace=getattr(args, "workspace", None), count=args.count)
    print(format_faceset(report))
    return 0


def format_faceset(report: api.FacesetReport) -> str:
    s = report.summary
    lines = [f"faceset {s.name}: {s.face_type} crops of {s.size} px in {s.folder.resolve()}",
             f"  kept {s.kept}; rejected: " + (", ".join(f"{n} {r}" for r, n in s.rejected.items()) or "none")]
    lines += [f"  source {path}: {frames} frames looked at, {kept} faces kept" for path, frames, kept in s.sources]
    lines += [f"  contact sheet: {report.sheet.resolve()}", f"  pose coverage: {report.poses.resolve()}"]
    return "\n".join(lines)


def cmd_faceset_prune(args: argparse.Namespace) -> int:
    result = api.prune_faceset(args.name, workspace=getattr(args, "workspace", None))
    print(f"faceset {args.name}: {result.missing_files} faces whose crop was deleted are now rejected "
          f"('removed by user'); {result.orphan_files} leftover files removed")
    return 0


def cmd_bench_extract(args: argparse.Namespace) -> int:
    result = api.bench_extract(video=args.video, progress=terminal_progress)
    print("bench extract: decode + landmarks + align + score + identity + write, every frame")
    print("\n".join("  " + row for row in result.rows()))
    return 0
