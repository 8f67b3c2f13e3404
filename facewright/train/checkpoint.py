"""Checkpoints that describe themselves, are written atomically and are checked before anything is replaced.

A checkpoint is one `torch.save` dict: the model's name, resolution and options (enough to rebuild it),
its weights and their EMA, the discriminator, both optimizers and the scheduler, every random state, the
step, the resolved training options, the sha256 of both facesets, the consent ids, and the versions.
Each is written to its own file (`step_0001500.pt`): to a temporary file, flushed to disk, loaded back,
and only then renamed into place. Pruning to the newest `keep` only ever deletes checkpoints of earlier
steps than the one just written, so a crash, a full disk or a corrupt write can never cost the last good
checkpoint, and the file just written is never the one deleted.

`run_state` builds that dict from a run's pieces and `restore_run` puts a run back where it was, so that
`--resume` continues exactly: the keys are a file format, which checkpoints of earlier versions still have.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from facewright import __version__
from facewright.config import TrainOptions, to_dict
from facewright.errors import CheckpointError
from facewright.files import atomic_path

MODELS = "models"  # workspace folder: models/<name>/{checkpoints/, preview.png, metrics.jsonl, loss.png}

if TYPE_CHECKING:
    from facewright.train.batches import BatchSource
    from facewright.train.optimize import PairOptimizer

FORMAT = "facewright.checkpoint/1"
REJECTED = "rejected"  # checkpoints/rejected/: later checkpoints set aside when a run resumes from an earlier one
_NAME = re.compile(r"step_(\d{7,})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def checkpoint_step(path: Path) -> int:
    match = _NAME.search(path.name)
    if match is None:
        raise CheckpointError("not a checkpoint file name (step_NNNNNNN.pt)", path=path,
                              fix="name a file from the run's checkpoints/ folder")
    return int(match.group(1))


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in `folder`, oldest step first."""
    found = [p for p in folder.glob("step_*.pt") if _NAME.search(p.name)]
    return sorted(found, key=checkpoint_step)


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int = 3) -> Path:
    """Write `state` as the checkpoint of `step`, verified before it is renamed into place; then prune.

    Pruning keeps the new checkpoint and the newest `keep - 1` of the earlier steps.
    """
    path = folder / checkpoint_name(step)
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            torch.save({"format": FORMAT, "facewright_version": __version__, "torch_version": str(torch.__version__),
                        **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        load_checkpoint(tmp)  # raises if what we wrote cannot be read back: nothing is replaced or pruned
    _fsync_folder(folder)
    earlier = [p for p in list_checkpoints(folder) if checkpoint_step(p) < step]
    for old in earlier[:max(0, len(earlier) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return path


def run_state(optimizer: PairOptimizer, batches: BatchSource, options: TrainOptions, step: int,
              seconds: float) -> dict[str, Any]:
    """Everything a checkpoint of `step` holds but the versions; `seconds`: the run's training time so far."""
    model, pair = optimizer.model, batches.pair
    return {
        "model": {"name": model.name, "resolution": model.resolution, "options": model.options},
        "weights": model.state_dict(), "ema": optimizer.ema.state_dict(),
        "disc": optimizer.disc.state_dict() if optimizer.disc is not None else None,
        "opt": optimizer.opt.state_dict(), "sched": optimizer.sched.state_dict(),
        "opt_d": optimizer.opt_d.state_dict() if optimizer.opt_d is not None else None,
        "step": step, "seconds": seconds, "rng": batches.stream_state(), "config": to_dict(options),
        "facesets": {side: {"name": f.name, "sha256": f.sha256, "faces": len(f), "face_type": f.face_type}
                     for side, f in (("a", pair.a), ("b", pair.b))},
        "consent": {"a": pair.consent_a, "b": pair.consent_b},
    }


def restore_run(state: dict[str, Any], optimizer: PairOptimizer, batches: BatchSource, lr: float) -> tuple[int, float]:
    """Put a run's pieces back at checkpoint `state`, with peak learning rate `lr`; returns (step, seconds)."""
    optimizer.model.load_state_dict(state["weights"])
    optimizer.ema.load_state_dict(state["ema"])
    optimizer.opt.load_state_dict(state["opt"])
    optimizer.sched.load_state_dict(state["sched"])
    if optimizer.disc is not None and state.get("disc") is not None:  # the GAN may be turned on in a resumed run
        optimizer.disc.load_state_dict(state["disc"])
        optimizer.opt_d.load_state_dict(state["opt_d"])
    step = int(state["step"])
    optimizer.set_lr(lr)
    batches.restore_streams(state["rng"], step)
    return step, float(state.get("seconds", 0.0))


def set_aside_later(folder: Path, step: int) -> list[Path]:
    """Move checkpoints of steps after `step` into checkpoints/rejected/ (a run resumed from an earlier one).

    They are neither deleted (one may be wanted back) nor left where they would be taken as the newest.
    """
    moved = []
    for path in list_checkpoints(folder):
        if checkpoint_step(path) > step:
            target = folder / REJECTED / path.name
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
            moved.append(target)
    return moved


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint, refusing anything that is not a complete facewright checkpoint."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError("no such checkpoint", path=path, fix="list the run's checkpoints/ folder") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged zip/pickle data
        raise CheckpointError(f"the checkpoint cannot be read ({type(exc).__name__}: {exc})"[:300], path=path,
                              fix=_older_fix(path)) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError("not a facewright checkpoint", path=path, fix=_older_fix(path))
    return state


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def _older_fix(path: Path) -> str:
    if not _NAME.search(path.name):
        return "name a checkpoint from the run's checkpoints/ folder"
    older = [p for p in list_checkpoints(path.parent) if checkpoint_step(p) < checkpoint_step(path)]
    if older:
        return f"resume from the previous one instead: --resume {older[-1]}"
    return "start a new training run (without --resume)"


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
