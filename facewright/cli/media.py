"""Commands for the workspace, media files, assets and speed benchmarks."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from facewright import api
from facewright.bench.io import check_bench_options
from facewright.cli.common import Command, _jsonable, _print_help, report
from facewright.errors import FacewrightError, InvalidMediaError, OptionError
from facewright.media import MediaInfo
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> argparse._SubParsersAction:
    """Add the commands; return the `bench` group, which other modules add their benchmarks to."""
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
    command("watermark", cmd_bench_watermark, "watermark bit accuracy after JPEG, resize, crop, H.264 and "
                                              "brightness; false positives; PSNR; speed", bench_commands)
    return bench_commands


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


def cmd_bench_extract(args: argparse.Namespace) -> int:
    result = api.bench_extract(video=args.video, progress=terminal_progress)
    print("bench extract: decode + landmarks + align + score + identity + write, every frame")
    print("\n".join("  " + row for row in result.rows()))
    return 0


def cmd_bench_watermark(args: argparse.Namespace) -> int:
    result = api.bench_watermark(progress=terminal_progress)
    print("bench watermark: 64-bit payload; bit accuracy against the truth (1.000 = every bit right)")
    print("\n".join("  " + row for row in result.rows()))
    return 0
