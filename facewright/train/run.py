"""A training run from the workspace's point of view: facesets in, consent checked, model folder out.

Consent comes before the first step: A (whose face is learned to be put into other footage) needs a
consent for the source role, B (whose footage will get A's face) one for the target role, and the faces in
both facesets must be the people in those consent photos. The consent ids go into every checkpoint.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from facewright.config import TrainOptions
from facewright.errors import CheckpointError, OptionError
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.enforce import require_consent
from facewright.train.checkpoint import latest_checkpoint, load_checkpoint
from facewright.train.data import check_pair, load_faceset
from facewright.train.distributed import from_env
from facewright.train.trainer import Pair, Trainer, TrainResult, write_json
from facewright.workspace import Workspace

MODELS = "models"  # workspace folder: models/<name>/{checkpoints/, preview.png, metrics.jsonl, loss.png}


def model_folder(ws: Workspace, src: str, dst: str, options: TrainOptions, name: str | None) -> Path:
    return ws.root / MODELS / (name or f"{src}-to-{dst}-{options.model}-{options.resolution}")


def resume_state(folder: Path, resume: bool | str | Path) -> dict[str, Any] | None:
    """The checkpoint to continue from: the newest in `folder` (resume=True) or the one named."""
    if not resume:
        return None
    if resume is True:
        path = latest_checkpoint(folder / "checkpoints")
        if path is None:
            raise CheckpointError("no checkpoint to resume from", path=folder / "checkpoints",
                                  fix="start without --resume, or name the checkpoint file: --resume FILE")
    else:
        path = Path(resume)
    return load_checkpoint(path)


def with_checkpoint_model(options: TrainOptions, state: dict[str, Any]) -> TrainOptions:
    """A resumed run keeps the checkpoint's architecture; the other options come from the command line."""
    model = state["model"]
    widths = {k: model["options"].get(k, 0) for k in ("ae_dims", "e_dims", "d_dims", "d_mask_dims")}
    return dataclasses.replace(options, model=model["name"], resolution=model["resolution"], **widths)


def train_pair(ws: Workspace, src: str, dst: str, options: TrainOptions, *, resume: bool | str | Path = False,
               name: str | None = None, progress: ProgressFactory = no_progress) -> TrainResult:
    """Load both facesets, check consent, and train (or continue) the pair model."""
    if src == dst:
        raise OptionError(f"--src and --dst are both {src!r}", fix="train a pair of two different people")
    folder = model_folder(ws, src, dst, options, name)
    state = resume_state(folder, resume)
    if state is not None:
        options = with_checkpoint_model(options, state)
    a = load_faceset(ws, src, options.resolution)
    b = load_faceset(ws, dst, options.resolution)
    check_pair(a, b)
    consent_a = require_consent(ws, src, "source", a.embeddings)
    consent_b = require_consent(ws, dst, "target", b.embeddings)
    pair = Pair(a, b, consent_a.id, consent_b.id)
    if from_env().main:
        write_json(folder / "train_config.json", {"src": src, "dst": dst, **dataclasses.asdict(options)})
    return Trainer(options, pair, folder, resume=state, progress=progress).run()
