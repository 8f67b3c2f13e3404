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
import math
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from facewright import __version__, api
from facewright.bench import SAMPLE_A, SAMPLE_B
from facewright.config import MarkOptions, SwapOptions, VideoOptions, build
from facewright.demo import demo_consent
from facewright.errors import InputError, OptionError
from facewright.files import atomic_path
from facewright.progress import ProgressFactory, no_progress
from facewright.swap.pipeline import SwapResult
from facewright.swap.run import swap as run_swap
from facewright.train.distributed import Dist, pick_device
from facewright.workspace import Workspace, resolve_root

# name -> (training preset, steps, minutes): the budget is steps on a CPU (a time budget would measure the
# machine as much as the method) and minutes on a GPU, where a fixed wall time is what users compare.
QUALITY_PRESETS = {
    "cpu": ("demo", 600, 0.0),
    "quick": ("quick", 0, 10.0),
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
    seed: int = SEED
    options: dict = field(default_factory=dict)  # training options given over the training preset's
    swap: dict = field(default_factory=dict)  # swap options given over the defaults
    gpu: dict = field(default_factory=dict)  # bench gpu: the node's throughput figures, render and output

    def row(self) -> str:
        given = "".join(f", {k}={v}" for k, v in self.options.items())
        swap = "".join(f", {k}={v}" for k, v in self.swap.items())
        run = (f"{self.preset} ({self.train_preset}{given}, {self.budget}, seed {self.seed}) on {self.device}: "
               f"trained {self.steps} steps in {self.train_seconds:.0f} s ({self.samples_per_second:.1f} "
               f"samples/s), loss {_fmt(self.loss, 3)}; swap{swap and ' (' + swap[2:] + ')'} "
               f"{self.swap_fps:.1f} frames/s")
        m = {**dict.fromkeys(HEADLINE), **_renamed(self.metrics)}  # rows of older versions may lack a figure
        figures = (f"swapped {_pct(m['swapped_frames'])} of frames | identity: SFace as A "
                   f"{_pct(m['recognized_as_source'])}, closer to A {_pct(m['closer_to_source'])}, similarity to A "
                   f"{_fmt(m['similarity_to_source'])}, to original {_fmt(m['similarity_to_target'])} | dlib as A "
                   f"{_pct(m['dlib_recognized_as_source'])}, to A {_fmt(m['dlib_to_source'])}, to original "
                   f"{_fmt(m['dlib_to_target'])} | expression r {_fmt(m['expression'])} (p5 "
                   f"{_fmt(m['expression_p5'])}), "
                   f"mouth {_pct(m['mouth_agreement'])}, eyes {_pct(m['eyes_agreement'])} | pose error "
                   f"{_fmt(m['pose_error'], 1)} deg | flicker {_fmt(m['flicker_ratio'])} | sharpness "
                   f"{_fmt(m['sharpness'])} | seam dE {_fmt(m['seam'], 1)} | background {_fmt(m['background'], 1)} "
                   f"levels, {_pct(m['background_changed'], 2)} changed | hands repainted {_pct(m['hands_repainted'])}")
        return f"{run} | {figures}"


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


# (row key, summary section, figure, statistic or None): the score figures a row keeps. Identity is SFace's
# (cosine similarities) and dlib's (L2 distances, "dlib_"); rows before SFace judged had dlib's figures under
# the unprefixed identity keys ("to_source", "to_target": distances).
HEADLINE = {
    "swapped_frames": ("coverage", "swapped", None),
    "found_in_output": ("coverage", "found_in_output", None),
    "recognized_as_source": ("identity", "recognized_as_source", None),
    "closer_to_source": ("identity", "closer_to_source", None),
    "similarity_to_source": ("identity", "similarity_to_source", "mean"),
    "similarity_to_target": ("identity", "similarity_to_target", "mean"),
    "dlib_recognized_as_source": ("identity_dlib", "recognized_as_source", None),
    "dlib_closer_to_source": ("identity_dlib", "closer_to_source", None),
    "dlib_to_source": ("identity_dlib", "to_source", "mean"),
    "dlib_to_target": ("identity_dlib", "to_target", "mean"),
    "expression": ("expression", "correlation", "mean"),
    "expression_p5": ("expression", "correlation", "p5"),
    "mouth_agreement": ("expression", "mouth_agreement", None),
    "eyes_agreement": ("expression", "eyes_agreement", None),
    "pose_error": ("pose", "error", "mean"),
    "flicker_ratio": ("stability", "flicker_ratio", None),
    "seam": ("seams", "delta_e", "mean"),
    "sharpness": ("sharpness", "ratio", "mean"),
    "background": ("background", "change", "mean"),
    "background_changed": ("background", "changed_share", None),
    "hands_repainted": ("hands", "repainted", None),
}


def _renamed(metrics: dict[str, float | None]) -> dict[str, float | None]:
    """A row's figures under today's keys: before SFace judged identity, the unprefixed identity keys held
    dlib's figures."""
    if "to_source" not in metrics:
        return metrics
    renamed = dict(metrics)
    for key in ("recognized_as_source", "closer_to_source", "to_source", "to_target"):
        renamed[f"dlib_{key}"] = renamed.pop(key, None)
    return renamed


def headline_metrics(summary: dict) -> dict[str, float | None]:
    """The figures of a score summary that go into a row (frame counts as shares of all frames)."""
    figures = {}
    for key, (section, name, statistic) in HEADLINE.items():
        value = summary[section][name]
        figures[key] = value[statistic] if statistic else value
    for share in ("swapped_frames", "found_in_output"):
        figures[share] /= max(1, summary["coverage"]["frames"])
    return figures


def bench_quality(*, preset: str = "cpu", steps: int | None = None, minutes: float | None = None,
                  device: str = "auto", results: str | Path | None = None, workspace: str | Path | None = None,
                  swaps: Sequence[Mapping[str, object]] = ({},), seed: int = SEED,
                  progress: ProgressFactory = no_progress, **train_options: object) -> list[QualityRow]:
    """The quality protocol on the sample pair: extract, train (fixed seed and budget), swap, score.

    One model is trained; each of `swaps` (SwapOptions fields over the defaults, e.g. {"detail": 0.5}) is
    one swap of B's clip, scored, and one row. The rows are appended to `results` (default:
    <workspace>/bench/quality.jsonl) and each score's report folder is kept beside it. `train_options`:
    TrainOptions fields over the training preset's. Another `seed` (weights, sampling, augmentation) shows
    how far a figure moves by chance: on one install a seed's figures repeat to the last digit.
    """
    video_a, video_b = api.asset(SAMPLE_A), api.asset(SAMPLE_B)
    results = results_file(results, workspace)
    train_preset, steps, minutes = quality_preset(preset, steps, minutes)
    variants = [dict(swap) for swap in swaps] or [{}]
    # built now, so that a typo fails before the training, not after it
    swap_options = [build(SwapOptions, config=swap, flags={"device": device}) for swap in variants]
    where = describe_device(device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="facewright-bench-quality-") as tmp:
        root = _pair_workspace(Path(tmp) / "ws", video_a, video_b, progress)
        options = {"preview_every": 0, **train_options, "steps": steps, "minutes": minutes, "seed": seed,
                   "device": device}
        trained = api.train("quality-a", "quality-b", name=MODEL, preset=train_preset, workspace=root,
                            progress=progress, **options)
        loss = trained.last_loss if trained.last_loss is not None and math.isfinite(trained.last_loss) else None
        trained_root = root
        if len(variants) > 1:  # each swap gets the trained workspace as it was: the same watermark id, one record
            trained_root = shutil.copytree(root, Path(tmp) / "trained")
        for number, (swap, built) in enumerate(zip(variants, swap_options, strict=True)):
            if number:
                root = shutil.copytree(trained_root, Path(tmp) / f"ws-{number}")
            swapped = _fixed_swap(root, video_b, Path(tmp) / f"swapped-{number}.mp4", built, progress)
            report = api.score(swapped.output, source="quality-a", target_video=video_b, workspace=root,
                               report=Path(tmp) / f"score-{number}", progress=progress)
            stamp = datetime.now(UTC)
            kept = keep_report(Path(tmp) / f"score-{number}",
                               _unused(results.parent / f"quality-{stamp:%Y%m%dT%H%M%SZ}-{preset}"))
            row = QualityRow(stamp.isoformat(timespec="seconds"), __version__, preset, train_preset,
                             budget_text(steps, minutes), trained.step, where, round(trained.seconds, 1),
                             round(trained.samples_per_second, 1), loss, round(swapped.fps, 2),
                             headline_metrics(report.summary), str(kept.resolve()), seed,
                             {k: v for k, v in train_options.items() if k != "preview_every"}, swap)
            append_row(results, row)
            rows.append(row)
    return rows


def _pair_workspace(root: Path, video_a: Path, video_b: Path, progress: ProgressFactory,
                    every: tuple[int, int] = (1, 1)) -> Path:
    """A workspace with the sample clips' demo-scoped consents and a faceset of each (every face of every
    `every`-th frame kept)."""
    for video, identity in ((video_a, "quality-a"), (video_b, "quality-b")):
        demo_consent(root, video, identity)
    for video, identity, nth in ((video_a, "quality-a", every[0]), (video_b, "quality-b", every[1])):
        api.extract([video], identity, workspace=root, dedupe=0, every=nth, progress=progress)
    return root


def keep_report(folder: Path, kept: Path) -> Path:
    """Copy a score folder's JSON and plots out of the bench's temporary workspace into `kept`.

    The worst-frames sheet stays behind: it shows faces, and the consent records it was signed under go
    with the temporary workspace. The JSON says so, and names no temporary file.
    """
    report = json.loads((folder / "score.json").read_text())
    report["output"] = "the bench's swap (temporary: rerun the protocol to see it)"
    report["files"] = {"json": str(kept / "score.json"), "plots": str(kept / "score.png")}
    report["notes"].append("the worst frames' sheet stayed with the bench's temporary workspace and the consent "
                           "records it was signed under; the worst frames are listed above")
    kept.mkdir(parents=True)
    shutil.copyfile(folder / "score.png", kept / "score.png")
    with atomic_path(kept / "score.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1, allow_nan=False))
    return kept


def _unused(path: Path) -> Path:
    """`path`, or `path`-2, -3 ... if it exists (two runs within a second)."""
    candidates = itertools.chain([path], (path.with_name(f"{path.name}-{n}") for n in itertools.count(2)))
    return next(p for p in candidates if not p.exists())


def budget_text(steps: int, minutes: float) -> str:
    if steps and minutes:
        return f"{steps} steps or {minutes:g} minutes, whichever ends first"
    return f"{steps} steps" if steps else f"{minutes:g} minutes"


def _fixed_swap(root: Path, video: Path, output: Path, options: SwapOptions, progress: ProgressFactory
                ) -> SwapResult:
    """The swap with `options` and a fixed watermark id, so that a rerun gives the same pixels.

    A random id (what every user-facing swap gets) moves pixels by ~3 levels; the blurry faces of a
    CPU-budget model then move the landmark and identity models measurably (seen: expression r 0.61 vs
    0.51, pose 3.2 vs 5.3 degrees for two swaps with the same model). The fixed id is not an option of
    `api.swap`, so the bench calls the swap stage itself, in its own throw-away workspace.
    """
    with Workspace.open(root) as ws:
        [result] = run_swap(ws, video, output, MODEL, options, MarkOptions(),
                            VideoOptions(), signer=api.keys_show(), trust=api.consent_trust(), progress=progress,
                            payloads=itertools.count(PAYLOAD))
    return result


def describe_device(device: str) -> str:
    import torch

    chosen = pick_device(device, Dist())
    if chosen.type == "cuda":
        return torch.cuda.get_device_name(chosen)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def results_file(results: str | Path | None = None, workspace: str | Path | None = None) -> Path:
    """Where `bench quality` appends its rows: `results`, else <workspace>/bench/quality.jsonl."""
    return Path(results) if results else resolve_root(workspace) / "bench" / "quality.jsonl"


def history(*, results: str | Path | None = None, workspace: str | Path | None = None) -> list[QualityRow]:
    """The rows of earlier `bench quality` runs, oldest first."""
    return read_rows(results_file(results, workspace))


def append_row(results: Path, row: QualityRow) -> None:
    """Append one JSON line; the file is rewritten whole through a temp file, so a crash never leaves half a line."""
    previous = results.read_text() if results.is_file() else ""
    if previous and not previous.endswith("\n"):
        previous += "\n"
    with atomic_path(results) as tmp:
        tmp.write_text(previous + json.dumps(asdict(row), allow_nan=False) + "\n")


def read_rows(results: Path) -> list[QualityRow]:
    """The rows of `results`, oldest first; keys a later version added or dropped are tolerated."""
    if not results.is_file():
        return []
    names = {f.name for f in fields(QualityRow)}
    rows = []
    for number, line in enumerate(results.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            rows.append(QualityRow(**{k: v for k, v in data.items() if k in names}))
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise InputError(f"line {number} is not a bench quality row ({exc})", path=results,
                             fix="remove or repair that line, or give another --results file") from exc
    return rows


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"

