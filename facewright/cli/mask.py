"""Commands for occlusion mask models: mask train, mask apply, mask list."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command, group
from facewright.config import MaskTrainOptions, add_options
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    masks = group(commands, "mask", "occlusion mask models: train, apply, list",
                  "a per-faceset model of which pixels are the face and which are in front of it (hands, "
                  "hair, objects); swap --mask occlusion uses it")
    sub = command("train", cmd_train, "train a mask model on a faceset (needs its person's consent)", masks)
    sub.add_argument("faceset", metavar="FACESET")
    sub.add_argument("--name", help="mask model name (default: the faceset's)")
    sub.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --name")
    sub.add_argument("--masks", metavar="FOLDER", help="corrected masks: one PNG per crop, named as the crop, "
                     "the crop's size, white = face; they override the computed labels")
    add_options(sub, MaskTrainOptions)
    sub = command("apply", cmd_apply, "rewrite a faceset's stored masks with a mask model (so a pair model "
                  "trained on them learns occluders)", masks)
    sub.add_argument("faceset", metavar="FACESET")
    sub.add_argument("--model", required=True, help="mask model name")
    command("list", cmd_list, "the workspace's mask models", masks)


def cmd_train(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(MaskTrainOptions)}
    result = api.train_mask(args.faceset, name=args.name, resume=args.resume, masks=args.masks,
                            workspace=getattr(args, "workspace", None), progress=terminal_progress, **options)
    losses = (f"loss {result.first_loss:.4f} -> {result.last_loss:.4f}, " if result.first_loss is not None else "")
    figures = (f"held-out face IoU {result.iou:.3f}, occluder pixels left out {result.occluder_recall:.1%}"
               if result.iou is not None else "not measured (no step done)")
    print(f"trained to step {result.steps} ({result.stopped} reached): {losses}{result.seconds:.0f} s\n"
          f"  {figures}\n"
          f"  faces: {result.faces} ({result.hands_found} with a hand, left out of their labels)\n"
          f"  mask model folder: {result.folder.resolve()}\n"
          f"  checkpoint:        {result.checkpoint.resolve() if result.checkpoint else 'none'}")
    if (result.folder / "preview.png").is_file():
        print(f"  preview:           {(result.folder / 'preview.png').resolve()}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    result = api.apply_mask_model(args.faceset, args.model, workspace=getattr(args, "workspace", None),
                                  progress=terminal_progress)
    print(f"{result.faces} masks of {result.faceset} rewritten with mask model {result.model} "
          f"({result.occluded} with something in front of the face) in {result.seconds:.1f} s")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    names = api.list_mask_models(workspace=getattr(args, "workspace", None))
    print("\n".join(names) if names else "no mask models yet: facewright mask train FACESET")
    return 0
