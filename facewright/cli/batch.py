"""`facewright batch JOBS.toml`: many shots in one command, resumable, with a summary table at the end."""
from __future__ import annotations

import argparse

from facewright.cli.common import Command
from facewright.cluster import batch
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("batch", cmd_batch, "swap many shots listed in a TOML jobs file, one after another: a bad shot "
                  "does not stop the others, a re-run skips the shots already done")
    sub.add_argument("jobs", metavar="JOBS.toml", help="[defaults] and one [[shot]] table per shot (input, output, "
                     "name, model and any swap option); see the README")
    sub.add_argument("--dry-run", action="store_true",
                     help="print each shot's input, output, model and options (and which are done) and exit")


def cmd_batch(args: argparse.Namespace) -> int:
    plan = batch.load_jobs(args.jobs, workspace=getattr(args, "workspace", None))
    if args.dry_run:
        print(batch.format_plan(plan, batch.done_shots(plan)))
        return 0
    try:
        report = batch.run_batch(plan, progress=terminal_progress,
                                 on_shot=lambda row: print(batch.status_line(row), flush=True))
    except batch.BatchInterrupted as exc:
        print(batch.format_summary(exc.report), flush=True)
        raise
    print(batch.format_summary(report))
    return report.exit_code
