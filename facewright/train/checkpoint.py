"""Checkpoints that describe themselves, are written atomically and are checked before older ones go.

A checkpoint is one `torch.save` dict: the model's name, resolution and options (enough to rebuild it),
its weights and their EMA, the discriminator, both optimizers and the scheduler, every random state, the
step, the resolved training options, the sha256 of both facesets, the consent ids, and the versions.
Each is written to its own file (`step_0001500.pt`) through a temporary file and a rename, then loaded
back; only a checkpoint that loads lets older ones beyond `keep` be deleted. So a crash, a full disk or
a corrupt write can never cost the last good checkpoint.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from facewright import __version__
from facewright.errors import CheckpointError
from facewright.files import atomic_path

FORMAT = "facewright.checkpoint/1"
_NAME = re.compile(r"step_(\d{7,})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in `folder`, oldest step first."""
    found = [p for p in folder.glob("step_*.pt") if _NAME.search(p.name)]
    return sorted(found, key=lambda p: int(_NAME.search(p.name).group(1)))


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int = 3) -> Path:
    """Write `state` as the checkpoint of `step`; verify it loads; then prune to the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "facewright_version": __version__, "torch_version": str(torch.__version__),
                    **state}, tmp)
    load_checkpoint(path)  # raises if the file we just wrote cannot be read back: older ones stay
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


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
    older = [p for p in list_checkpoints(path.parent) if p != path and p.name < path.name]
    if older:
        return f"resume from the previous one instead: --resume {older[-1]}"
    return "start a new training run (without --resume)"
