"""Commands for training pair models: models list, train."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command
from facewright.config import TrainOptions, add_options
from facewright.progress import terminal_progress
from facewright.train.presets import PRESETS


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    models = commands.add_parser("models", help="model architectures: list",
                                 description="the registered pair-model architectures")
    model_commands = models.add_subparsers(title="models commands", metavar="ACTION")
    models.set_defaults(handler=lambda args: _list(args.resolution))
    models.add_argument("--resolution", type=int, default=128, help="size the figures are for (default: 128)")
    sub = command("list", lambda args: _list(args.resolution), "parameters and GFLOPs per sample of each model",
                  model_commands)
    sub.add_argument("--resolution", type=int, default=128, help="size the figures are for (default: 128)")

    sub = command("train", cmd_train, "train a pair model: A's face (--src) to be put into B's footage (--dst)")
    sub.add_argument("--src", required=True, help="faceset of person A (needs a source-role consent)")
    sub.add_argument("--dst", required=True, help="faceset of person B (needs a target-role consent)")
    sub.add_argument("--name", help="model folder name: letters, digits, '-', '_', '.' (default: "
                     "pair-HASH-MODEL-RESOLUTION, HASH from the two names, so the folder names neither person)")
    sub.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                     help="continue from the newest checkpoint of --name (or from the file given)")
    sub.add_argument("--preset", choices=tuple(PRESETS), help="a named option set; flags given win over it")
    add_options(sub, TrainOptions)


def _list(resolution: int) -> int:
    print(f"{'model':<10} {'parameters':>12} {'GFLOPs/sample':>14}   (at {resolution} px, default widths)")
    for info in api.list_models(resolution):
        print(f"{info.name:<10} {info.parameters / 1e6:10.2f} M {info.gflops_per_sample:14.2f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions)}
    result = api.train(args.src, args.dst, name=args.name, resume=args.resume, preset=args.preset,
                       workspace=getattr(args, "workspace", None), progress=terminal_progress, **options)
    losses = (f"loss {result.first_loss:.4f} -> {result.last_loss:.4f}, " if result.first_loss is not None else "")
    print(f"trained to step {result.step} ({result.stopped} reached): {losses}"
          f"{result.samples_per_second:.1f} samples/s over {result.seconds:.0f} s\n"
          f"  model folder: {result.folder.resolve()}\n"
          f"  checkpoint:   {result.checkpoint.resolve() if result.checkpoint else 'none (no step done)'}")
    for label, name in (("preview:   ", "preview.png"), ("loss curve:", "loss.png")):
        if (result.folder / name).is_file():
            print(f"  {label}  {(result.folder / name).resolve()}")
    return 0
