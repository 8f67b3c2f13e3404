"""Commands for measuring quality: score, bench quality, bench all."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.bench.quality import QUALITY_PRESETS
from facewright.cli.common import Command
from facewright.config import ScoreOptions, add_options
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command,
             bench_commands: argparse._SubParsersAction) -> None:
    sub = command("score", cmd_score, "measure a swap against the footage it was made from: identity, expression, "
                  "pose, flicker, seams, background (JSON, plots, worst frames)")
    sub.add_argument("output", metavar="OUTPUT", help="the swapped video or image")
    sub.add_argument("--source", required=True, help="person A: a faceset name in the workspace, or a photo or "
                     "video of A")
    sub.add_argument("--target-video", required=True, help="the video (or image) the swap was made from")
    sub.add_argument("--report", help="folder for score.json, score.png, worst.png (default: beside OUTPUT, "
                     "STEM.score/)")
    add_options(sub, ScoreOptions)

    for name, handler, text in (
            ("quality", cmd_bench_quality, "quality figures of a fixed protocol: extract the sample pair, train a "
                                           "preset for a fixed budget (seed 0), swap, score; appends to a JSONL"),
            ("all", cmd_bench_all, "io, extract, train and swap speed, then the quality row, in one run")):
        sub = command(name, handler, text, bench_commands)
        sub.add_argument("--preset", default="cpu", choices=tuple(QUALITY_PRESETS),
                         help="cpu: the demo model for 600 steps; gpu: gpu-256 for 10 minutes (default: cpu)")
        sub.add_argument("--device", default="auto")
        sub.add_argument("--results", help="JSONL the row is appended to (default: <workspace>/bench/quality.jsonl)")
        if name == "quality":
            sub.add_argument("--steps", type=int, help="training budget in steps instead of the preset's")
            sub.add_argument("--minutes", type=float, help="training budget in minutes instead of the preset's")
            sub.add_argument("--history", action="store_true", help="print the rows of earlier runs and stop")


def cmd_score(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(ScoreOptions)}
    report = api.score(args.output, source=args.source, target_video=args.target_video, report=args.report,
                       workspace=getattr(args, "workspace", None), progress=terminal_progress, **options)
    print(f"score: {report.output.name} against {report.target.name}, A = {report.source}")
    print("\n".join("  " + line for line in report.headline()))
    if report.worst:
        print("  worst frames: " + "; ".join(w.caption() for w in report.worst))
    for note in report.notes:
        print(f"  note: {note}")
    for kind, path in report.files.items():
        print(f"  {kind}: {path}")
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    if args.history:
        rows = api.quality_history(results=args.results, workspace=getattr(args, "workspace", None))
        print("\n".join(f"{row.when}  {row.version}  {row.row()}" for row in rows) or "no bench quality runs yet")
        return 0
    row = api.bench_quality(preset=args.preset, steps=args.steps, minutes=args.minutes, device=args.device,
                            results=args.results, workspace=getattr(args, "workspace", None),
                            progress=terminal_progress)
    print("bench quality: " + row.row())
    results = api.quality_results(args.results, getattr(args, "workspace", None))
    print(f"  appended to {results}; score report kept in {row.report}")
    return 0


def cmd_bench_all(args: argparse.Namespace) -> int:
    for name, lines in api.bench_all(preset=args.preset, device=args.device, results=args.results,
                                     workspace=getattr(args, "workspace", None), progress=terminal_progress):
        print(f"bench {name}:", flush=True)
        print("\n".join("  " + line for line in lines), flush=True)
    return 0
