"""Commands for the workspace, media files and assets."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from facewright import api
from facewright.cli.common import Command, _jsonable, group, report
from facewright.errors import FacewrightError, InvalidMediaError
from facewright.media import MediaInfo
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    command("init", cmd_init, "create a workspace (catalog + output folders), or upgrade an old one")

    sub = command("probe", cmd_probe, "print streams, duration, fps, frame count and problems of media files")
    sub.add_argument("files", nargs="+", metavar="FILE")
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")

    asset_commands = group(commands, "assets", "model files and sample media: list, fetch",
                           "model files and sample media, pinned by version and sha256")
    sub = command("list", cmd_assets_list, "list assets with license, size and cache state", asset_commands)
    sub.add_argument("--kind", choices=("model", "media"))
    sub = command("fetch", cmd_assets_fetch, "download, verify and cache assets (all by default)", asset_commands)
    sub.add_argument("names", nargs="*", metavar="NAME")
    sub.add_argument("--kind", choices=("model", "media"))
    sub.add_argument("--force", action="store_true", help="fetch again even if a verified copy is cached")


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
