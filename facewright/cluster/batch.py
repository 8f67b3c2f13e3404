"""`facewright batch JOBS.toml`: the shots of a jobs file (see cluster/jobs.py) swapped one after another.

A bad shot (a corrupt plate, no face, a missing file: any FacewrightError) is recorded as failed and the
batch goes on; a full disk stops it, since every next shot would fail the same way. Each shot is a plain
`api.swap(..., resume=True)`, so a long video interrupted mid-way goes on from its last finished chunk.

Resume: JOBS.state.json beside the jobs file (written atomically after every shot) records each shot's
outcome, its options hash, its input's size and time stamp, and its outputs with their sha256. A re-run skips
a shot that is done with the same options hash and input, and whose outputs are still there with those
sha256; a changed shot, a changed input or a missing or altered output runs again, as does a failed shot.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from facewright import api
from facewright.cluster.jobs import BatchPlan, Shot, format_plan, load_jobs, plan_jobs
from facewright.errors import DiskFullError, FacewrightError, InputError, OptionError
from facewright.files import atomic_path, sha256_file
from facewright.progress import ProgressFactory, no_progress
from facewright.workers import Pool

__all__ = ["BatchInterrupted", "BatchPlan", "BatchReport", "Outcome", "Shot", "ShotRow", "done_shots",
           "format_plan", "format_summary", "load_jobs", "plan_jobs", "run_batch", "status_line"]

STATE_VERSION = 1
FAILED_EXIT = InputError.exit_code  # as `facewright swap FOLDER` with a bad file: 2


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # done by an earlier run, outputs unchanged
    FAILED = "failed"
    NOT_RUN = "not run"  # the batch stopped before it (a full disk, Ctrl-C)


@dataclass(frozen=True)
class ShotRow:
    """One shot's line of the summary."""

    name: str
    input: Path
    outcome: Outcome
    frames: int = 0  # frames (or images) written; a skipped shot's are those of the run that made it
    seconds: float = 0.0  # wall seconds of this run
    output: Path | None = None  # the output file (the output folder of a folder of images)
    error: FacewrightError | None = None


@dataclass(frozen=True)
class BatchReport:
    jobs: Path
    rows: tuple[ShotRow, ...]
    stopped: FacewrightError | None = None  # why the batch stopped before its last shot (a full disk)

    def count(self, outcome: Outcome) -> int:
        return sum(row.outcome == outcome for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every shot is done or skipped, else 2 (FAILED_EXIT)."""
        bad = self.count(Outcome.FAILED) + self.count(Outcome.NOT_RUN)
        return FAILED_EXIT if bad else 0


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a batch: still an interrupt, carrying the report of the shots so far."""

    def __init__(self, report: BatchReport):
        super().__init__("batch interrupted")
        self.report = report


def run_batch(plan: BatchPlan, *, progress: ProgressFactory = no_progress, pool: Pool | None = None,
              on_shot: Callable[[ShotRow], None] | None = None) -> BatchReport:
    """Swap every shot of `plan` in turn, skipping those an earlier run finished; `on_shot(row)` as each ends.

    `pool`: the workers a long video's chunks run on (default: each shot's `workers` option decides).
    Raises BatchInterrupted on Ctrl-C, once the finished shots are recorded in the state file.
    """
    state = read_state(plan.state_path)
    rows: list[ShotRow] = []
    stopped: FacewrightError | None = None
    with progress(total=len(plan.shots), desc=f"batch {len(plan.shots)} shots", unit="shot") as bar:
        for shot in plan.shots:
            if stopped is not None:
                rows.append(ShotRow(shot.name, shot.input, Outcome.NOT_RUN))
                continue
            try:
                row, entry = _shot(shot, state.get(shot.name), plan.workspace, progress, pool)
            except KeyboardInterrupt as exc:
                rows += [ShotRow(s.name, s.input, Outcome.NOT_RUN) for s in plan.shots[len(rows):]]
                raise BatchInterrupted(BatchReport(plan.jobs, tuple(rows))) from exc
            if entry is not None:
                state[shot.name] = entry
                write_state(plan.state_path, state)
            if isinstance(row.error, DiskFullError):
                stopped = row.error  # not this shot's fault: every next one would fail the same way
            rows.append(row)
            bar.update(1)
            if on_shot is not None:
                on_shot(row)
    return BatchReport(plan.jobs, tuple(rows), stopped)


def _shot(shot: Shot, entry: Mapping[str, Any] | None, workspace: Path | None, progress: ProgressFactory,
          pool: Pool | None) -> tuple[ShotRow, dict[str, Any] | None]:
    """The shot's row and its new state entry (None: skipped, the entry stands)."""
    if entry is not None and is_done(shot, entry):
        output = Path(entry["output"]) if entry.get("output") else None
        return ShotRow(shot.name, shot.input, Outcome.SKIPPED, entry.get("frames", 0), 0.0, output), None
    stamp = input_stamp(shot.input)  # before the swap: an input changed while it ran is run again next time
    started = time.monotonic()
    try:
        results = api.swap(shot.input, shot.output, model=shot.model, resume=True, workspace=workspace,
                           progress=progress, pool=pool, **shot.options)
    except Exception as exc:  # one bad shot must not cost the others, whatever failed in it
        error = exc if isinstance(exc, FacewrightError) else FacewrightError(
            f"internal error: {type(exc).__name__}: {exc}", path=shot.input,
            fix=f"run this shot alone with --debug for the traceback (facewright swap {shot.input} --debug ...), "
                "and report it")
        row = ShotRow(shot.name, shot.input, Outcome.FAILED, seconds=time.monotonic() - started, error=error)
        return row, _entry(shot, row, stamp, [])
    row = _row(shot, results, time.monotonic() - started)
    done = [r for r in results if isinstance(r, api.SwapResult)]
    return row, _entry(shot, row, stamp, [{"path": str(r.output), "sha256": r.sha256} for r in done])


def _row(shot: Shot, results: list[api.SwapResult | api.SwapFailure], seconds: float) -> ShotRow:
    """A video or image shot has one result; a folder shot one per image, and fails if any image failed."""
    done = [r for r in results if isinstance(r, api.SwapResult)]
    failed = [r for r in results if isinstance(r, api.SwapFailure)]
    frames = sum(r.frames for r in done)
    output = done[0].output if len(results) == 1 and done else shot.output or (done[0].output.parent if done else None)
    if not failed:
        return ShotRow(shot.name, shot.input, Outcome.DONE, frames, seconds, output)
    error = failed[0].error if len(results) == 1 else InputError(
        f"{len(failed)} of {len(results)} images failed, first {failed[0].input.name}: {failed[0].error.message}",
        path=shot.input, fix=failed[0].error.fix or "fix or remove those images; a re-run swaps only them")
    return ShotRow(shot.name, shot.input, Outcome.FAILED, frames, seconds, output, error)


# --- the state file --------------------------------------------------------------------------------------------


def read_state(path: Path) -> dict[str, dict[str, Any]]:
    """The state file's entries by shot name ({} when there is none yet)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != STATE_VERSION or not isinstance(data.get("shots"), dict):
            raise ValueError(f"version {data.get('version')!r}, not {STATE_VERSION}")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise OptionError(f"the batch's state file cannot be read ({exc})", path=path,
                          fix="delete it: every shot then runs again (their outputs are replaced)") from exc
    return data["shots"]


def write_state(path: Path, shots: Mapping[str, Mapping[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"version": STATE_VERSION, "shots": shots}, indent=2) + "\n")


def _entry(shot: Shot, row: ShotRow, stamp: str | None, outputs: list[dict[str, str]]) -> dict[str, Any]:
    error = row.error
    return {"status": "done" if row.outcome == Outcome.DONE else "failed", "options_hash": shot.options_hash,
            "input": str(shot.input), "input_stamp": stamp, "output": str(row.output) if row.output else None,
            "outputs": outputs, "frames": row.frames, "seconds": round(row.seconds, 3),
            "error": error.message if error else None, "fix": error.fix if error else None,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def is_done(shot: Shot, entry: Mapping[str, Any]) -> bool:
    """Whether an earlier run finished `shot` as it is now: same options and input, outputs unchanged.
    An entry edited out of shape is not done: the shot runs again."""
    try:
        return (entry.get("status") == "done" and entry.get("options_hash") == shot.options_hash
                and entry.get("input_stamp") == input_stamp(shot.input) and bool(entry.get("outputs"))
                and all(_unchanged(Path(o["path"]), o["sha256"]) for o in entry["outputs"]))
    except (AttributeError, KeyError, TypeError):
        return False


def _unchanged(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def input_stamp(path: Path) -> str | None:
    """Size and modification time of a file (of each file, for a folder): a re-exported plate is a new input.

    Not its sha256: hashing every plate of a long batch on each run would cost minutes for no gain."""
    if path.is_file():
        info = path.stat()
        return f"{info.st_size}:{info.st_mtime_ns}"
    if path.is_dir():
        listing = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in path.iterdir() if p.is_file())
        return "folder:" + hashlib.sha256("\n".join(listing).encode()).hexdigest()
    return None


def done_shots(plan: BatchPlan) -> set[str]:
    """The names of the shots a run of `plan` would skip."""
    state = read_state(plan.state_path)
    return {shot.name for shot in plan.shots if shot.name in state and is_done(shot, state[shot.name])}


# --- what is printed -------------------------------------------------------------------------------------------


def status_line(row: ShotRow) -> str:
    """One line as a shot ends: `sh010 done 12.3 s 472 frames -> out/sh010.mp4` or `sh020 FAILED: ...`."""
    if row.outcome == Outcome.FAILED:
        return f"{row.name} FAILED: {_first_line(row.error)}"
    if row.outcome == Outcome.SKIPPED:
        return f"{row.name} skipped (done before, output unchanged) -> {row.output}"
    if row.outcome == Outcome.NOT_RUN:
        return f"{row.name} not run"
    return f"{row.name} done {row.seconds:.1f} s {row.frames} frames -> {row.output}"


def format_summary(report: BatchReport) -> str:
    """The table printed at the end: one row per shot, then each failure's full message and fix."""
    header = ("shot", "outcome", "frames", "seconds", "output / error")
    cells = [header] + [(row.name, row.outcome.upper() if row.outcome == Outcome.FAILED else str(row.outcome),
                         str(row.frames) if row.frames else "-", f"{row.seconds:.1f}" if row.seconds else "-",
                         _first_line(row.error) if row.error else str(row.output or "-"))
                        for row in report.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(4)]
    table = ["  ".join([c[0].ljust(widths[0]), c[1].ljust(widths[1]), c[2].rjust(widths[2]),
                        c[3].rjust(widths[3]), c[4]]).rstrip() for c in cells]
    counts = ", ".join(f"{report.count(o)} {o}" for o in Outcome if report.count(o) or o != Outcome.NOT_RUN)
    lines = [f"batch {report.jobs.name}: {len(report.rows)} shot(s): {counts}", *table]
    failures = [row for row in report.rows if row.error is not None]
    lines += ["", "failed:"] * bool(failures) + [f"  {row.name}: " + str(row.error).replace("\n", "\n  ")
                                                 for row in failures]
    if report.stopped is not None:
        lines += ["", f"the batch stopped: {_first_line(report.stopped)}; the shots after it did not run"]
    return "\n".join(lines)


def _first_line(error: FacewrightError | None) -> str:
    return str(error).split("\n", 1)[0] if error is not None else ""
