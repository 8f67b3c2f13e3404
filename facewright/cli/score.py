"""`facewright score`: the quality of a swap, measured against the footage it was made from."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command
from facewright.config import ScoreOptions, add_options
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("score", cmd_score, "measure a swap against the footage it was made from: identity, expression, "
                  "pose, flicker, seams, background (JSON, plots, worst frames)")
    sub.add_argument("output", metavar="OUTPUT", help="the swapped video or image")
    sub.add_argument("--source", required=True, help="person A: a faceset name in the workspace, or a photo or "
                     "video of A")
    sub.add_argument("--target-video", required=True, help="the video (or image) the swap was made from")
    sub.add_argument("--report", help="folder for score.json, score.png, worst.png (default: beside OUTPUT, "
                     "STEM.score/)")
    add_options(sub, ScoreOptions)


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
