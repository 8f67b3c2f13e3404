"""`facewright bench quality`: one fixed, reproducible protocol from sample clips to quality figures.

In a temporary workspace: demo-scoped consents for the two people of the sample clips, a faceset of each
clip, a pair model trained with a fixed seed for a fixed budget (a preset's steps or minutes), a swap of
person B's clip, and `score` of that swap against B's clip with A's faceset. One row of figures comes out;
it is appended to a JSONL file so that runs (other presets, budgets, devices, code versions) can be
compared, and the score's report folder (JSON, plots, worst frames) is kept beside it.
"""
from __future__ import annotations

import itertools
import json
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from facewright import __version__
from facewright.config import MarkOptions, SwapOptions, VideoOptions, build
from facewright.errors import OptionError
from facewright.files import atomic_path
from facewright.progress import ProgressFactory, no_progress
from facewright.swap.pipeline import SwapResult
from facewright.swap.run import swap as run_swap
from facewright.train.distributed import Dist, pick_device

# name -> (training preset, steps, minutes): the budget is steps on a CPU (a time budget would measure the
# machine as much as the method) and minutes on a GPU, where a fixed wall time is what users compare.
QUALITY_PRESETS = {
    "cpu": ("demo", 600, 0.0),
    "gpu": ("gpu-256", 0, 10.0),
}
SEED = 0
MODEL = "quality"
PAYLOAD = 0x7175616C69747931  # "quality1": the bench's fixed watermark id (its workspace is thrown away)


@dataclass(frozen=True)
class QualityRow:
    when: str
    version: str
    preset: str
    train_preset: str
    budget: str  # "600 steps" or "10.0 minutes"
    steps: int  # trained
    device: str
    train_seconds: float
    samples_per_second: float
    loss: float | None
    swap_fps: float
    metrics: dict[str, float | None]
    report: str  # the kept score folder

    def row(self) -> str:
        m = self.metrics
        return (f"{self.preset} ({self.train_preset}, {self.budget}, seed {SEED}) on {self.device}: trained "
                f"{self.steps} steps in {self.train_seconds:.0f} s, loss {_fmt(self.loss, 3)}; swap "
                f"{self.swap_fps:.1f} frames/s | identity: as A {_pct(m['recognized_as_source'])}, closer to A "
                f"{_pct(m['closer_to_source'])}, to A {_fmt(m['to_source'])}, to original {_fmt(m['to_target'])} | "
                f"expression r {_fmt(m['expression'])}, mouth {_pct(m['mouth_agreement'])}, eyes "
                f"{_pct(m['eyes_agreement'])} | pose error {_fmt(m['pose_error'], 1)} deg | flicker "
                f"{_fmt(m['flicker_ratio'])} | sharpness {_fmt(m['sharpness'])} | seam dE {_fmt(m['seam'], 1)} | "
                f"background {_fmt(m['background'], 1)} levels")


def quality_preset(name: str, steps: int | None, minutes: float | None) -> tuple[str, int, float]:
    """(training preset, steps, minutes) of a named protocol, with an explicit budget replacing its own."""
    if name not in QUALITY_PRESETS:
        raise OptionError(f"unknown quality preset {name!r}", fix=f"use one of {', '.join(QUALITY_PRESETS)}")
    train_preset, preset_steps, preset_minutes = QUALITY_PRESETS[name]
    if (steps or 0) < 0 or (minutes or 0) < 0:
        raise OptionError("--steps and --minutes cannot be negative")
    if steps or minutes:
        return train_preset, steps or 0, minutes or 0.0
    return train_preset, preset_steps, preset_minutes


def headline_metrics(summary: dict) -> dict[str, float | None]:
    """The figures of a score summary that go into a row."""
    return {
        "recognized_as_source": summary["identity"]["recognized_as_source"],
        "closer_to_source": summary["identity"]["closer_to_source"],
        "to_source": summary["identity"]["to_source"]["mean"],
        "to_target": summary["identity"]["to_target"]["mean"],
        "expression": summary["expression"]["correlation"]["mean"],
        "expression_p5": summary["expression"]["correlation"]["p5"],
        "mouth_agreement": summary["expression"]["mouth_agreement"],
        "eyes_agreement": summary["expression"]["eyes_agreement"],
        "pose_error": summary["pose"]["error"]["mean"],
        "flicker_ratio": summary["stability"]["flicker_ratio"],
        "seam": summary["seams"]["delta_e"]["mean"],
        "sharpness": summary["sharpness"]["ratio"]["mean"],
        "background": summary["background"]["change"]["mean"],
        "background_changed": summary["background"]["changed_share"],
        "swapped_frames": summary["coverage"]["swapped"] / max(1, summary["coverage"]["frames"]),
    }


def bench_quality(video_a: Path, video_b: Path, results: Path, *, preset: str = "cpu", steps: int | None = None,
                  minutes: float | None = None, device: str = "auto",
                  progress: ProgressFactory = no_progress, **train_options: object) -> QualityRow:
    """Run the protocol; append the row to `results` (JSONL) and keep the score folder beside it.

    `train_options`: TrainOptions fields over the training preset's (tests shrink the model with them).
    """
    from facewright import api  # the bench drives the public API, as a user would
    from facewright.demo import demo_consent
    from facewright.workspace import Workspace

    train_preset, steps, minutes = quality_preset(preset, steps, minutes)
    where = describe_device(device)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-quality-") as tmp:
        root = Path(tmp) / "ws"
        with Workspace.init(root) as ws:
            demo_consent(ws, video_a, "quality-a"), demo_consent(ws, video_b, "quality-b")
        for video, identity in ((video_a, "quality-a"), (video_b, "quality-b")):
            api.extract([video], identity, workspace=root, dedupe=0, progress=progress)
        options = {"preview_every": 0, **train_options, "steps": steps, "minutes": minutes, "seed": SEED,
                   "device": device}
        trained = api.train("quality-a", "quality-b", name=MODEL, preset=train_preset, workspace=root,
                            progress=progress, **options)
        swapped = _swap(root, video_b, Path(tmp) / "swapped.mp4", device, progress)
        report = api.score(swapped.output, source="quality-a", target_video=video_b, workspace=root,
                           report=Path(tmp) / "score", progress=progress)
        stamp = datetime.now(UTC)
        kept = results.parent / f"quality-{stamp:%Y%m%dT%H%M%SZ}-{preset}"
        shutil.copytree(Path(tmp) / "score", kept)
    budget = f"{steps} steps" if steps else f"{minutes:g} minutes"
    row = QualityRow(stamp.isoformat(timespec="seconds"), __version__, preset, train_preset, budget, trained.step,
                     where, round(trained.seconds, 1), round(trained.samples_per_second, 1), trained.last_loss,
                     round(swapped.fps, 2), headline_metrics(report.summary), str(kept))
    append_row(results, row)
    return row


def _swap(root: Path, video: Path, output: Path, device: str, progress: ProgressFactory) -> SwapResult:
    """The swap with default options and a fixed watermark id, so that a rerun gives the same pixels.

    A random id (what every user-facing swap gets) moves pixels by ~3 levels; the blurry faces of a
    CPU-budget model then move the landmark and identity models measurably (seen: expression r 0.61 vs
    0.51, pose 3.2 vs 5.3 degrees for two swaps with the same model).
    """
    from facewright.workspace import Workspace

    with Workspace.open(root) as ws:
        [result] = run_swap(ws, video, output, MODEL, build(SwapOptions, flags={"device": device}), MarkOptions(),
                            VideoOptions(), progress=progress, payloads=itertools.count(PAYLOAD))
    return result


def describe_device(device: str) -> str:
    import torch

    chosen = pick_device(device, Dist())
    if chosen.type == "cuda":
        return torch.cuda.get_device_name(chosen)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def append_row(results: Path, row: QualityRow) -> None:
    """Append one JSON line; the file is rewritten whole through a temp file, so a crash never leaves half a line."""
    previous = results.read_text() if results.is_file() else ""
    with atomic_path(results) as tmp:
        tmp.write_text(previous + json.dumps(asdict(row), allow_nan=False) + "\n")


def read_rows(results: Path) -> list[dict]:
    if not results.is_file():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"

