"""`facewright bench gpu run BUNDLE OUT`: the GPU side of the GPU bench, on a node with torch and nothing else.

Needs only torch, numpy, pillow and opencv (no PyAV, MediaPipe, dlib, c2pa or cryptography): a bare GPU node
runs it as `python -m facewright.bench.gpu_node BUNDLE OUT` from a copy of the source. It reads only the
bundle that `bench gpu prepare` wrote (both people's training faces and the target clip's aligned crops,
checked against the bundle's sha256s) and writes only to OUT:
- figures.json: the card, throughput (samples/s of the preset with augmentation and the GAN on, eager and
  compiled, per batch size; the bare forward and backward pass of the same network on random tensors as the
  reference; model FLOPs utilisation; peak memory), the training run and the render;
- loss.jsonl: the training run's metric lines;
- faces-NNN.npz: the target's crops rendered by the EMA model (uint8 faces and masks, lossless, at most
  FACES_PER_FILE per file so that each stays far under 16 MB at 256 px).
No image or video file is written here: the rendered faces are arrays for `bench gpu finish`, which
composites, labels, watermarks and signs them on the workstation, where the signing key stays.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facewright import __version__
from facewright.config import TrainOptions
from facewright.errors import FacewrightError, InputError, NoDeviceError, OptionError
from facewright.files import atomic_path, sha256_file
from facewright.progress import terminal_progress
from facewright.swap.model import render_crops
from facewright.train.batches import BatchSource, Pair
from facewright.train.distributed import Dist
from facewright.train.models import create_model, describe
from facewright.train.optimize import PairOptimizer
from facewright.train.presets import preset_options
from facewright.train.tensors import FacesetTensors
from facewright.train.trainer import Trainer

BUNDLE_FORMAT = "facewright-gpu-bundle-1"
MANIFEST = "manifest.json"
FIGURES = "figures.json"
LOSS_LOG = "loss.jsonl"
FACES_PER_FILE = 48  # 48 x 256 x 256 x 4 bytes = 12.6 MB even uncompressed: under the 16 MB a file that comes back
PRESET = "gpu-256"
BATCHES = (32, 64)
WARMUP_STEPS = 3  # not timed: cuDNN autotuning, compilation
TIMED_STEPS = 30
RENDER_BATCH = 32
LIMIT_MINUTES = 8.0  # the whole run; the training gets what the throughput runs leave of it, up to --minutes
MARGIN_MINUTES = 0.5  # kept back for the render and the files
# bf16 dense tensor peak of cards by name (TFLOP/s, the vendors' data sheets, without sparsity); the first
# key found in the card's name wins, so the longer names of a family come before the shorter
BF16_PEAK_TFLOPS = {"GH200": 989.0, "H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                    "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0, "A10G": 70.0,
                    "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0, "RTX 6000 Ada": 365.0}


@dataclass(frozen=True)
class Throughput:
    batch: int  # faces of each person per step
    compiled: bool
    samples_per_second: float  # A + B faces per second
    step_ms: float
    first_steps_seconds: float  # the untimed warm-up (compilation when compiled)
    peak_memory_gb: float
    mfu: float | None  # share of the card's bf16 peak, from the forward GFLOPs x 3 (forward + backward)


@dataclass(frozen=True)
class Reference:
    batch: int
    samples_per_second: float  # the bare network: forward and backward of A and B, one L1 loss, AdamW
    step_ms: float
    peak_memory_gb: float


def card_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def bf16_peak(name: str) -> float | None:
    """The card's bf16 dense peak in FLOP/s, or None for a card not in the table (or a CPU)."""
    for key, tflops in BF16_PEAK_TFLOPS.items():  # longer names first where they share a prefix
        if key in name:
            return tflops * 1e12
    return None


# --- the bundle ------------------------------------------------------------------------------------------------


def read_bundle(folder: str | Path) -> dict[str, Any]:
    """The bundle's manifest, after checking its format and every file's sha256 (InputError naming the file)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InputError("not a GPU bench bundle (no manifest.json)", path=folder,
                         fix="make one with `facewright bench gpu prepare BUNDLE` on the workstation")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != BUNDLE_FORMAT:
        raise InputError(f"bundle format {manifest.get('format')!r}, this facewright reads {BUNDLE_FORMAT}",
                         path=manifest_path, fix="prepare the bundle with the same facewright version")
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            raise InputError("missing or changed since the bundle was prepared (sha256 differs)", path=path,
                             fix="copy the whole bundle folder again")
    return manifest


def load_person(folder: Path, entry: dict[str, Any], device: torch.device) -> FacesetTensors:
    with np.load(folder / entry["file"]) as arrays:
        images, masks, priority = (torch.from_numpy(arrays[k]).to(device) for k in ("images", "masks", "priority"))
        poses = arrays["poses"] if "poses" in arrays.files else None  # for --pose-match
    return FacesetTensors(entry["name"], images, masks, priority, np.zeros((len(images), 128), np.float32),
                          entry["face_type"], entry["sha256"], poses)


# --- throughput ----------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_memory(device: torch.device) -> int:
    """Free what earlier runs left (the optimizer's scheduler holds a cycle: collect it) and start counting the
    peak; returns the bytes still allocated, which the peak of this run leaves out."""
    gc.collect()
    if device.type != "cuda":
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def _peak_gb(device: torch.device, baseline: int) -> float:
    return (torch.cuda.max_memory_allocated(device) - baseline) / 1e9 if device.type == "cuda" else 0.0


def _timed(step: Callable[[], object], device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the warm-up steps, seconds per timed step)."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return warm, (time.perf_counter() - start) / steps


def measure_training(options: TrainOptions, pair: Pair, device: torch.device, gflops: float,
                     peak: float | None, warmup: int, steps: int) -> Throughput:
    """The real step (augmentation on the device, every loss, the GAN, EMA) at `options.batch`."""
    baseline = _reset_memory(device)
    optimizer = PairOptimizer(options, device, Dist())
    batches = BatchSource(pair, options, device, Dist())
    counter = iter(range(10**9))

    def step() -> object:
        return optimizer.optimize(*batches.next(), next(counter))

    warm, seconds = _timed(step, device, warmup, steps)
    rate = 2 * options.batch / seconds
    mfu = rate * gflops * 1e9 * 3 / peak if peak else None
    return Throughput(options.batch, options.compile, round(rate, 1), round(1000 * seconds, 2), round(warm, 1),
                      round(_peak_gb(device, baseline), 2), None if mfu is None else round(mfu, 4))


def measure_reference(options: TrainOptions, device: torch.device, warmup: int, steps: int) -> Reference:
    """The same network's forward and backward on random tensors: no augmentation, one L1 loss, eager."""
    baseline = _reset_memory(device)
    torch.manual_seed(options.seed)
    model = create_model(options.model, options.resolution, **options.model_options()).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=options.lr)
    size = (options.batch, 3, options.resolution, options.resolution)
    a, b = torch.rand(size, device=device), torch.rand(size, device=device)
    if cuda:
        a, b = a.contiguous(memory_format=torch.channels_last), b.contiguous(memory_format=torch.channels_last)

    def step() -> object:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            image_a, _ = model(a, "a")
            image_b, _ = model(b, "b")
            loss = F.l1_loss(image_a.float(), a) + F.l1_loss(image_b.float(), b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    _, seconds = _timed(step, device, warmup, steps)
    return Reference(options.batch, round(2 * options.batch / seconds, 1), round(1000 * seconds, 2),
                     round(_peak_gb(device, baseline), 2))


# --- the run -------------------------------------------------------------------------------------------------


def train_options(preset: str, device: str, overrides: dict[str, Any]) -> TrainOptions:
    return TrainOptions(**{**preset_options(preset), "device": device, "preview_every": 0, "steps": 0,
                           "minutes": 0.0, "save_every": 10**9, "log_every": 50, **overrides})


def run(bundle: str | Path, out: str | Path, *, device: str = "cuda", minutes: float = 5.0,
        batches: Sequence[int] = BATCHES, compile: bool = True, preset: str = PRESET,
        timed_steps: int = TIMED_STEPS, limit: float = LIMIT_MINUTES, say: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """Measure throughput, train the preset for `minutes` (less if the run would pass `limit` minutes), render
    the target's faces; write OUT; the figures. figures.json is rewritten after each phase, so a run cut short
    keeps what it measured ("complete": false)."""
    started = time.perf_counter()
    bundle, out = Path(bundle), Path(out)
    place = torch.device(device)
    if place.type == "cuda" and not torch.cuda.is_available():
        raise NoDeviceError("no CUDA device here: the GPU bench measures a GPU", path=bundle,
                            fix="run it on the GPU node; `--device cpu` (with a small --preset) only checks the wiring")
    if minutes <= 0 or limit <= 0:
        raise OptionError(f"--minutes and --limit must be positive, got {minutes} and {limit}",
                          fix="the bench's defaults are 5 and 8")
    if not batches or min(batches) < 1 or timed_steps < 1:
        raise OptionError("--batches needs at least one size of 1 or more, and --timed-steps at least 1",
                          fix=f"the defaults: --batches {','.join(map(str, BATCHES))} --timed-steps {TIMED_STEPS}")
    manifest = read_bundle(bundle)
    resolution = preset_options(preset).get("resolution")
    if resolution != manifest["resolution"]:
        raise OptionError(f"preset {preset} trains at {resolution} px, the bundle holds {manifest['resolution']} px "
                          "faces", path=bundle, fix=f"prepare the bundle with --preset {preset}")
    out.mkdir(parents=True, exist_ok=True)
    if place.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    name = card_name(place)
    say(f"bench gpu run: {name}, torch {torch.__version__}, bundle {manifest['id']} ({manifest['resolution']} px, "
        f"A {manifest['a']['faces']} faces, B {manifest['b']['faces']} faces, {manifest['target']['crops']} "
        f"target crops)")
    pair = Pair(load_person(bundle, manifest["a"], place), load_person(bundle, manifest["b"], place),
                manifest["a"]["consent"], manifest["b"]["consent"])
    base = train_options(preset, device, {})
    info = describe(create_model(base.model, base.resolution, **base.model_options()))
    peak = bf16_peak(name)
    figures: dict[str, Any] = {
        "card": name, "torch": torch.__version__, "facewright": __version__, "bundle": manifest["id"],
        "preset": preset, "model": asdict(info), "bf16_peak_tflops": peak and peak / 1e12, "throughput": [],
        "reference": [], "complete": False}
    for batch in batches:
        for compiled in (False, True) if compile else (False,):
            options = replace(base, batch=batch, gan_start=0, gan_power=base.gan_power or 0.1, compile=compiled)
            say(f"  throughput: batch {batch}, {'compiled' if compiled else 'eager'} ...")
            result = measure_training(options, pair, place, info.gflops_per_sample, peak, WARMUP_STEPS, timed_steps)
            figures["throughput"].append(asdict(result))
            say(f"    {result.samples_per_second} samples/s ({result.step_ms} ms a step; warm-up "
                f"{result.first_steps_seconds} s; peak {result.peak_memory_gb} GB; MFU {_pct(result.mfu)})")
        reference = measure_reference(replace(base, batch=batch), place, WARMUP_STEPS, timed_steps)
        figures["reference"].append(asdict(reference))
        say(f"  reference (bare network, random tensors, eager): batch {batch}: {reference.samples_per_second} "
            f"samples/s")
    figures["ratio_to_reference"] = _ratios(figures)
    _write(out, figures)
    at_batch = [t for t in figures["throughput"] if t["batch"] == base.batch] or figures["throughput"]
    compiled = max(at_batch, key=lambda t: t["samples_per_second"])["compiled"]
    left = limit - (time.perf_counter() - started) / 60 - MARGIN_MINUTES
    # Never more than asked: the half-minute floor is for what the throughput runs leave, not a raise of a
    # shorter --minutes (a wiring check's few seconds).
    budget = round(min(minutes, max(0.5, left)), 2)
    if budget < minutes:
        say(f"  the throughput runs took {limit - left - MARGIN_MINUTES:.1f} minutes: training gets {budget:g} "
            f"minutes, not {minutes:g}, to end within {limit:g}")
    say(f"  time to quality: {preset} for {budget:g} minutes (batch {base.batch}, "
        f"{'compiled' if compiled else 'eager'}) ...")
    figures["budget_minutes"] = budget
    figures["training"], ema = _train(replace(base, minutes=budget, compile=compiled), pair, out, say)
    _write(out, figures)
    figures["render"] = _render(ema, bundle, manifest, place, out, say)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["complete"] = True
    _write(out, figures)
    say(f"bench gpu run: {figures['seconds']:.0f} s in all; figures in {out / FIGURES}; bring OUT back and run "
        f"`facewright bench gpu finish {out}`")
    return figures


def _write(out: Path, figures: dict[str, Any]) -> None:
    with atomic_path(out / FIGURES) as tmp:
        tmp.write_text(json.dumps(figures, indent=1, allow_nan=False))


def _pct(value: float | None) -> str:
    return "n/a (card not in the peak table)" if value is None else f"{100 * value:.1f}%"


def _ratios(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each throughput row against the bare eager reference of its batch size."""
    references = {r["batch"]: r["samples_per_second"] for r in figures["reference"]}
    return [{"batch": t["batch"], "compiled": t["compiled"],
             "ratio": round(t["samples_per_second"] / references[t["batch"]], 3)}
            for t in figures["throughput"] if references.get(t["batch"])]


def _train(options: TrainOptions, pair: Pair, out: Path, say: Callable[[str], None]
           ) -> tuple[dict[str, Any], torch.nn.Module]:
    with tempfile.TemporaryDirectory(prefix="facewright-gpu-train-") as tmp:
        trainer = Trainer(options, pair, Path(tmp), progress=terminal_progress, signer=None, checkpoints=False)
        result = trainer.run()
        log = Path(tmp) / "metrics.jsonl"
        with atomic_path(out / LOSS_LOG) as target:
            target.write_bytes(log.read_bytes() if log.is_file() else b"")
    figures = {"steps": result.step, "seconds": round(result.seconds, 1),
               "samples_per_second": round(result.samples_per_second, 1), "first_loss": _finite(result.first_loss),
               "last_loss": _finite(result.last_loss), "compiled": options.compile, "batch": options.batch}
    say(f"    trained {result.step} steps in {result.seconds:.0f} s ({result.samples_per_second:.0f} samples/s), "
        f"loss {result.first_loss} -> {result.last_loss}")
    return figures, trainer.optimizer.ema.module


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _render(model: torch.nn.Module, bundle: Path, manifest: dict[str, Any], device: torch.device, out: Path,
            say: Callable[[str], None]) -> dict[str, Any]:
    """The target's crops through the EMA model as A: uint8 faces and masks, FACES_PER_FILE a file."""
    model = model.eval()
    with np.load(bundle / manifest["target"]["file"]) as arrays:
        crops, keys = arrays["crops"], arrays["keys"]
    start, files = time.perf_counter(), []
    for first in range(0, len(crops), FACES_PER_FILE):
        faces, masks = [], []
        for i in range(first, min(len(crops), first + FACES_PER_FILE), RENDER_BATCH):
            face, mask = render_crops(model, crops[i:min(i + RENDER_BATCH, first + FACES_PER_FILE)], device)
            faces.append(_u8(face))
            masks.append(_u8(mask))
        name = f"faces-{first // FACES_PER_FILE:03d}.npz"
        with atomic_path(out / name) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, keys=keys[first:first + FACES_PER_FILE], faces=np.concatenate(faces),
                                masks=np.concatenate(masks))
        files.append(name)
    seconds = time.perf_counter() - start
    say(f"    rendered {len(crops)} faces in {seconds:.1f} s into {len(files)} file(s)")
    return {"faces": int(len(crops)), "seconds": round(seconds, 2), "files": files}


def _u8(values: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m facewright.bench.gpu_node BUNDLE OUT [...]` on a node without facewright's other dependencies."""
    parser = argparse.ArgumentParser(prog="python -m facewright.bench.gpu_node", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except FacewrightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="the folder `bench gpu prepare` wrote")
    parser.add_argument("out", metavar="OUT", help="where the figures, loss log and rendered faces go")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (with a small --preset: a wiring check)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of the time-to-quality run")
    parser.add_argument("--preset", default=PRESET, help=f"training preset (default {PRESET})")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes of the throughput runs")
    parser.add_argument("--timed-steps", type=int, default=TIMED_STEPS, help="timed steps per throughput run")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled throughput runs")
    parser.add_argument("--limit", type=float, default=LIMIT_MINUTES,
                        help=f"minutes for the whole run (default {LIMIT_MINUTES:g}): the training gets what is left")


def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError as exc:
        raise OptionError(f"--batches {args.batches!r} is not a list of whole numbers", fix="e.g. 32,64") from exc
    return run(args.bundle, args.out, device=args.device, minutes=args.minutes, batches=batches,
               compile=not args.no_compile, preset=args.preset, timed_steps=args.timed_steps, limit=args.limit)


if __name__ == "__main__":
    sys.exit(main())
