"""`facewright swap`: put a model's person A into a video, an image or a folder of images."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command, add_cluster, cluster_pool, warn_undecoded
from facewright.config import MarkOptions, SwapOptions, VideoOptions, add_options
from facewright.progress import terminal_progress

SCHEMAS = (SwapOptions, MarkOptions, VideoOptions)


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("swap", cmd_swap, "put the model's person A into a video, an image or a folder of images "
                  "(labelled, watermarked and signed)")
    sub.add_argument("input", metavar="INPUT", help="a video, an image, or a folder of images")
    sub.add_argument("--model", required=True, help="model folder name in the workspace (or a checkpoint file)")
    sub.add_argument("-o", "--output", help="output file, or folder for a folder input "
                     "(default: <workspace>/outputs/NAME-swapped.EXT)")
    sub.add_argument("--resume", action="store_true",
                     help="folder input: skip images already swapped; a long video: keep the chunks an interrupted "
                          "run of the same swap rendered (same input, model, options and --workers)")
    for schema in SCHEMAS:
        add_options(sub, schema)
    add_cluster(sub)


def _options(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for schema in SCHEMAS for f in dataclasses.fields(schema)}


def cmd_swap(args: argparse.Namespace) -> int:
    with cluster_pool(args) as pool:
        results = api.swap(args.input, args.output, model=args.model, resume=args.resume,
                           workspace=getattr(args, "workspace", None), progress=terminal_progress, pool=pool,
                           **_options(args))
    failed = 0
    for result in results:
        if isinstance(result, api.SwapFailure):
            failed += 1
            print(f"{result.input}: skipped, {result.error}")
            continue
        print(f"{result.input.name} -> {result.output.resolve()}\n"
              f"  {result.frames} frame(s), faces swapped in {result.frames_swapped}; {result.tracks_swapped} of "
              f"{result.tracks_seen} face track(s); {result.fps:.1f} frames/s; "
              + (f"watermark id {result.payload_hex}" if result.payload_hex else  # --render-only: no video yet
                 f"rendered for `facewright composite {result.input} --patch {result.output.parent} -o OUT`"))
        if result.preview is not None:
            print(f"  preview: {result.preview.resolve()}")
        for note in result.notes:  # frames whose face failed its identity check: left as they were
            print(f"  note: {note}")
        warn_undecoded(result.input, result)
    return 2 if failed else 0
