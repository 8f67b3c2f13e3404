"""`facewright bench ...`: benchmarks that print figures (facewright.bench runs them)."""
from __future__ import annotations

import argparse

from facewright.bench import SAMPLE_A
from facewright.bench.extract import bench_extract, extraction_ceiling, extraction_floor, scaling_rows
from facewright.bench.gpu import MAX_FACES
from facewright.bench.gpu import finish as finish_gpu
from facewright.bench.gpu import prepare as prepare_gpu
from facewright.bench.gpu_node import PRESET as GPU_PRESET
from facewright.bench.gpu_node import add_arguments as add_node_arguments
from facewright.bench.gpu_node import run_from_args as run_gpu_node
from facewright.bench.io import bench_io, check_bench_options
from facewright.bench.occlusion import bench_occlusion
from facewright.bench.quality import QUALITY_PRESETS, bench_quality, history, results_file
from facewright.bench.suite import bench_all
from facewright.bench.swap import bench_swap, workers_rows
from facewright.bench.train import bench_train
from facewright.bench.watermark import bench_watermark
from facewright.bench.web import MIN_FACES as WEB_MIN_FACES
from facewright.bench.web import bench_workspace as web_workspace
from facewright.bench.web import cache_folder as web_cache
from facewright.cli.common import Command
from facewright.cli.common import group as command_group
from facewright.config import SwapOptions, TrainOptions, parse_assignments
from facewright.errors import OptionError
from facewright.progress import terminal_progress
from facewright.train.presets import PRESETS
from facewright.web.bench import measure as measure_web


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    group = command_group(commands, "bench", "benchmarks that print speed and quality figures", title="benchmarks",
                          metavar="BENCH")
    sub = command("io", cmd_bench_io, "video decode and encode frames/s at 640x360 and 1280x720", group)
    sub.add_argument("--frames", type=int, default=120, help="frames per test (default: 120)")
    sub.add_argument("--sizes", default="640x360,1280x720", help="WxH list (default: 640x360,1280x720)")
    sub = command("extract", cmd_bench_extract, "end-to-end extraction frames/s on a sample video, per stage, for "
                  "each worker count, beside the bare single-thread floor", group)
    sub.add_argument("--video", default=SAMPLE_A, help="a registered sample video")
    sub.add_argument("--workers", default="1,2", type=_counts, help="worker counts to run, e.g. 1,2 (default: 1,2)")
    command("watermark", cmd_bench_watermark, "watermark bit accuracy and p-value after re-encoding, downscaling, "
                                              "cropping, mirroring and rotation; false positives; PSNR; speed", group)
    _register_train(command, group)
    sub = command("swap", cmd_bench_swap, "swap frames/s end to end and time per stage, with a freshly trained "
                  "tiny model on the sample clips", group)
    sub.add_argument("--device", default="auto")
    sub.add_argument("--workers", default="1,2", type=_counts,
                     help="worker counts for the long-clip swap, e.g. 1,2 (default: 1,2)")
    _register_quality(command, group)
    _register_gpu(command, group)
    sub = command("occlusion", cmd_bench_occlusion, "occluder pixels kept and face pixels swapped with synthetic "
                  "occluders and real hands, per --mask mode, and the time the hand and mask models add", group)
    sub.add_argument("--steps", type=int, help="pair-model training steps (default: the demo preset's)")
    sub.add_argument("--mask-steps", type=int, help="mask-model training steps (default: mask train's)")
    sub.add_argument("--device", default="auto")
    sub.add_argument("--results", help="JSONL the row is appended to (default: <workspace>/bench/occlusion.jsonl)")
    sub = command("web", cmd_bench_web, "web UI response times (overview, faceset review page, a page of 60 faces) "
                  "on a faceset of 500+ faces, served in-process; median and p95 per route", group)
    sub.add_argument("--repeats", type=int, default=20, help="timed requests per route (default: 20)")
    sub.add_argument("--warmup", type=int, default=2, help="untimed requests per route first (default: 2)")
    sub.add_argument("--min-faces", type=int, default=WEB_MIN_FACES,
                     help=f"kept faces the bench's faceset must hold (default: {WEB_MIN_FACES})")
    sub.add_argument("--cache", help="folder of the bench's workspace, built once and reused (default: "
                     "<workspace>/bench/web-workspace)")


def _register_train(command: Command, group: argparse._SubParsersAction) -> None:
    sub = command("train", cmd_bench_train, "training samples/s, peak memory, augmentation vs model time", group)
    sub.add_argument("--preset", choices=tuple(PRESETS), help="the model and options of a training preset "
                     "(e.g. demo, the CPU preset of make demo); flags given win over it")
    sub.add_argument("--model", help="architecture (default: liae-ud)")
    sub.add_argument("--resolution", type=int, help="face size in pixels (default: 128)")
    sub.add_argument("--batch", type=int, help="faces of each person per step (default: 8)")
    sub.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    sub.add_argument("--gan-power", type=float, help="weight of the adversarial loss (0: off; default: the "
                     "preset's, else 0); e.g. 0.1 times the step with the GAN on")
    sub.add_argument("--compile", action="store_true", default=None, help="torch.compile the step")
    sub.add_argument("--device", default="auto")


def _register_gpu(command: Command, group: argparse._SubParsersAction) -> None:
    gpu = command_group(group, "gpu", "the GPU bench: prepare a bundle here, run it on a GPU node, finish here")
    sub = command("prepare", cmd_bench_gpu_prepare, "write a bundle (at most 50 MB) of the sample pair's faces and "
                  "the target clip's crops for `bench gpu run`", gpu)
    sub.add_argument("bundle", metavar="BUNDLE", help="a new folder")
    sub.add_argument("--preset", default=GPU_PRESET, help=f"the training preset it is for (default {GPU_PRESET})")
    sub.add_argument("--max-faces", type=int, default=MAX_FACES, help=f"faces of each person (default {MAX_FACES})")
    sub = command("run", cmd_bench_gpu_run, "on the GPU node: throughput, a timed training run and the render of "
                  "the target's faces into OUT (exit 2 without CUDA)", gpu)
    add_node_arguments(sub)
    sub = command("finish", cmd_bench_gpu_finish, "composite, mark, sign and score the node's faces; append the "
                  "row to bench/quality.jsonl", gpu)
    sub.add_argument("out", metavar="OUT", help="the OUT folder of `bench gpu run`")
    sub.add_argument("-o", "--output", help="where the swapped clip goes (default: beside the bench workspace)")


def _register_quality(command: Command, group: argparse._SubParsersAction) -> None:
    for name, handler, text in (
            ("quality", cmd_bench_quality, "quality figures of a fixed protocol: extract the sample pair, train a "
                                           "preset for a fixed budget (seed 0), swap, score; appends to a JSONL"),
            ("all", cmd_bench_all, "io, extract, train and swap speed, then the quality row, in one run")):
        sub = command(name, handler, text, group)
        sub.add_argument("--preset", default="cpu", choices=tuple(QUALITY_PRESETS),
                         help="cpu: the demo model for 600 steps; quick: the quick preset for 10 minutes; gpu: "
                              "gpu-256 for 10 minutes (default: cpu)")
        sub.add_argument("--device", default="auto")
        sub.add_argument("--results", help="JSONL the row is appended to (default: <workspace>/bench/quality.jsonl)")
        if name == "quality":
            sub.add_argument("--steps", type=int, help="training budget in steps instead of the preset's")
            sub.add_argument("--minutes", type=float, help="training budget in minutes instead of the preset's")
            sub.add_argument("--history", action="store_true", help="print the rows of earlier runs and stop")
            sub.add_argument("--seed", type=int, default=0, help="training seed (default: 0); another seed shows "
                             "how far the figures move by chance")
            sub.add_argument("--train", default="", metavar="KEY=VALUE,...",
                             help="training options over the preset's, e.g. --train lr=1e-3,ema=0.99")
            sub.add_argument("--swap", action="append", default=[], metavar="KEY=VALUE,...",
                             help="swap options of one scored swap of the trained model, e.g. --swap detail=0.5; "
                                  "repeat it for more rows from one training (default: one swap with the defaults)")


def cmd_bench_occlusion(args: argparse.Namespace) -> int:
    row = bench_occlusion(steps=args.steps, mask_steps=args.mask_steps, device=args.device, results=args.results,
                          workspace=getattr(args, "workspace", None), progress=terminal_progress)
    print("\n".join(row.lines()))
    return 0


def cmd_bench_io(args: argparse.Namespace) -> int:
    try:
        sizes = tuple(tuple(int(v) for v in item.lower().split("x")) for item in args.sizes.split(","))
    except ValueError as exc:
        raise OptionError(f"--sizes {args.sizes!r} is not a list of WxH", fix="e.g. --sizes 640x360,1280x720") from exc
    check_bench_options(args.frames, sizes)  # before the sample clip is fetched or decoded
    results = bench_io(frames=args.frames, sizes=sizes, progress=terminal_progress)
    print("bench io: libx264 crf 18 yuv420p; decode = H.264 to RGB arrays")
    for result in results:
        print("  " + result.row())
    return 0


def cmd_bench_extract(args: argparse.Namespace) -> int:
    floor = extraction_floor(args.video)
    runs = [bench_extract(args.video, workers=n, progress=terminal_progress) for n in args.workers]
    ceiling = extraction_ceiling(args.video, workers=max(args.workers)) if max(args.workers) > 1 else None
    print("bench extract: decode + landmarks + align + score + identity + write, every frame")
    for run in runs:
        print("\n".join("  " + row for row in run.rows()))
    print("\n".join("  " + row for row in scaling_rows(floor, runs, ceiling)))
    return 0


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts like 1,2; got {text!r}")
    return counts


def cmd_bench_watermark(args: argparse.Namespace) -> int:
    result = bench_watermark(progress=terminal_progress)
    print("bench watermark: 64-bit payload; bit accuracy against the truth (1.000 = every bit right)")
    print("\n".join("  " + row for row in result.rows()))
    return 0


def cmd_bench_gpu_prepare(args: argparse.Namespace) -> int:
    manifest = prepare_gpu(args.bundle, workspace=getattr(args, "workspace", None), preset=args.preset,
                           max_faces=args.max_faces, progress=terminal_progress)
    print(f"bench gpu prepare: bundle {manifest['id']} in {args.bundle} ({manifest['size_mb']} MB: A "
          f"{manifest['a']['faces']} faces, B {manifest['b']['faces']} faces, {manifest['target']['crops']} target "
          f"crops at {manifest['resolution']} px)\n  on the node: python -m facewright.bench.gpu_node BUNDLE OUT\n"
          f"  back here: facewright bench gpu finish OUT")
    return 0


def cmd_bench_gpu_run(args: argparse.Namespace) -> int:
    run_gpu_node(args)
    return 0


def cmd_bench_gpu_finish(args: argparse.Namespace) -> int:
    row = finish_gpu(args.out, workspace=getattr(args, "workspace", None), output=args.output,
                     progress=terminal_progress)
    print(f"bench gpu finish: {row.row()}\n  swapped clip: {row.gpu['output']}\n  row appended to "
          f"{results_file(None, getattr(args, 'workspace', None))}")
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    result = bench_train(preset=args.preset, model=args.model, resolution=args.resolution, batch=args.batch,
                         steps=args.steps, gan_power=args.gan_power, compile=args.compile, device=args.device,
                         progress=terminal_progress)
    print("bench train: " + result.row())
    return 0


def cmd_bench_swap(args: argparse.Namespace) -> int:
    rows, scaling = bench_swap(device=args.device, workers=tuple(args.workers), progress=terminal_progress)
    for row in rows:
        print("bench swap: " + row.row())
    for row in workers_rows(scaling):
        print("bench swap, B's clip looped to 14 s: " + row)
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    workspace = getattr(args, "workspace", None)
    if args.history:
        rows = history(results=args.results, workspace=workspace)
        print("\n".join(f"{row.when}  {row.version}  {row.row()}" for row in rows) or "no bench quality runs yet")
        return 0
    train = parse_assignments(args.train, TrainOptions, "--train")
    for fixed in ("steps", "minutes", "seed", "device"):
        if fixed in train:
            raise OptionError(f"--train {fixed} is set by the protocol", fix=f"use --{fixed} of bench quality")
    swaps = [parse_assignments(text, SwapOptions, "--swap") for text in args.swap]
    rows = bench_quality(preset=args.preset, steps=args.steps, minutes=args.minutes, device=args.device,
                         results=args.results, workspace=workspace, swaps=swaps, seed=args.seed,
                         progress=terminal_progress, **train)
    for row in rows:
        print("bench quality: " + row.row())
        print(f"  appended to {results_file(args.results, workspace)}; score report kept in {row.report}")
    return 0


def cmd_bench_all(args: argparse.Namespace) -> int:
    for name, lines in bench_all(preset=args.preset, device=args.device, results=args.results,
                                 workspace=getattr(args, "workspace", None), progress=terminal_progress):
        print(f"bench {name}:", flush=True)
        print("\n".join("  " + line for line in lines), flush=True)
    return 0


def cmd_bench_web(args: argparse.Namespace) -> int:
    workspace = getattr(args, "workspace", None)
    root, faceset, reused = web_workspace(args.cache, workspace=workspace, min_faces=args.min_faces,
                                          progress=terminal_progress)
    result = measure_web(root, faceset, repeats=args.repeats, warmup=args.warmup)
    print(f"bench web: GET through the app in-process (FastAPI TestClient); workspace "
          f"{'reused' if reused else 'built'} in {web_cache(args.cache, workspace)}")
    print("\n".join("  " + row for row in result.rows()))
    return 0
