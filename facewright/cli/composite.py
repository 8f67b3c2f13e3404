"""`facewright composite`: the swapped video from the faces `swap --render-only` rendered (no model needed)."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command, warn_undecoded
from facewright.config import MarkOptions, VideoOptions, add_options
from facewright.progress import terminal_progress

SCHEMAS = (MarkOptions, VideoOptions)


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("composite", cmd_composite, "make the swapped video from a `swap --render-only` folder: color, "
                  "blend, label, watermark, encode, audio, sign (no model needed)")
    sub.add_argument("input", metavar="INPUT", help="the video the faces were rendered from")
    sub.add_argument("--patch", required=True, metavar="DIR", help="the folder `swap INPUT --render-only DIR` wrote")
    sub.add_argument("-o", "--output", required=True, help="output video (.mp4 or .mov)")
    sub.add_argument("--device", default=None, help="where a mask model named by the render runs (default: auto)")
    for schema in SCHEMAS:
        add_options(sub, schema)


def cmd_composite(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for schema in SCHEMAS for f in dataclasses.fields(schema)}
    result = api.composite(args.input, args.output, patch=args.patch, workspace=getattr(args, "workspace", None),
                           progress=terminal_progress, device=args.device, **options)
    print(f"{result.input.name} + {args.patch} -> {result.output.resolve()}\n"
          f"  {result.frames} frame(s), faces composited in {result.frames_swapped}; {result.tracks_swapped} face "
          f"track(s); {result.fps:.1f} frames/s; watermark id {result.payload_hex}")
    for note in result.notes:  # "edited: ..." for track files changed since the render
        print(f"  note: {note}")
    warn_undecoded(result.input, result)
    return 0
