"""`facewright demo`: the whole pipeline on the sample clips, and where everything went."""
from __future__ import annotations

import argparse
from pathlib import Path

from facewright.cli.common import Command
from facewright.cli.faces import format_extract, format_faceset
from facewright.demo import run_demo
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("demo", cmd_demo, "the whole pipeline on the bundled sample clips: consent, extract, train, swap, "
                                    "verify, score")
    sub.add_argument("--steps", type=int, help="training steps in all (default: the demo preset's 600; 20 for a "
                     "quick look at the wiring)")


def cmd_demo(args: argparse.Namespace) -> int:
    result = run_demo(getattr(args, "workspace", None), steps=args.steps, progress=terminal_progress)
    print("\nfacewright demo: done: consent, extraction, training, swap, verify and score on the sample clips")
    for record in result.consents:
        print(f"consent {record.id[:12]} for {record.identity}: {record.display_name}, scope {record.scope}, "
              f"expires {record.expires}")
    for extraction, report in zip(result.extractions, result.reports, strict=True):
        print(format_extract(extraction))
        print(format_faceset(report))
    training = result.training
    print(f"model {training.folder.name}: step {training.step}"
          + (f", loss {training.first_loss:.4f} -> {training.last_loss:.4f}" if training.first_loss else "")
          + f"\n  preview (rows A, A->A, A->B, B, B->B, B->A): {(training.folder / 'preview.png').resolve()}"
          f"\n  loss curve: {(training.folder / 'loss.png').resolve()}")
    swapped, report = result.swap, result.verify
    print(f"swapped video: {swapped.output.resolve()}\n"
          f"  {swapped.frames} frames, faces swapped in {swapped.frames_swapped}, {swapped.fps:.1f} frames/s; "
          f"labelled, watermarked (id {swapped.payload_hex}) and C2PA-signed; audio kept\n"
          f"  preview strip (input | output): {swapped.preview.resolve() if swapped.preview else 'none'}\n"
          f"  facewright verify: {report.outcome} (C2PA {report.c2pa.state}, watermark "
          f"{'found' if report.watermark and report.watermark.found else 'not found'})")
    print(f"quality (facewright score, A = {result.score.source}):")
    print("\n".join("  " + line for line in result.score.headline()))
    print(f"  report, plots, worst frames: {Path(result.score.files['json']).parent.resolve()}")
    print(f"catalog: {(result.workspace / 'catalog.sqlite').resolve()}")
    return 0
