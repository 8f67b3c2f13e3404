"""The pair models a workspace holds, and the figures of their training, for listings (the web UI)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facewright.train.checkpoint import MODELS, checkpoint_step, list_checkpoints
from facewright.workspace import Workspace


@dataclass(frozen=True)
class TrainedModel:
    name: str
    folder: Path
    step: int  # of the newest checkpoint (0: none yet)
    checkpoints: int
    preview: Path | None  # the newest signed preview PNG

    @property
    def usable(self) -> bool:
        return self.step > 0


def trained_models(ws: Workspace) -> list[TrainedModel]:
    """Every pair model folder under models/, by name."""
    found = []
    for folder in sorted(p for p in (ws.root / MODELS).glob("*") if p.is_dir()):
        checkpoints = list_checkpoints(folder / "checkpoints")
        preview = folder / "preview.png"
        found.append(TrainedModel(folder.name, folder, checkpoint_step(checkpoints[-1]) if checkpoints else 0,
                                  len(checkpoints), preview if preview.is_file() else None))
    return found


def training_metrics(folder: Path, points: int = 400) -> list[dict[str, float]]:
    """The logged steps of a model's training (metrics.jsonl), thinned evenly to at most `points` (the last kept)."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written as we read
            continue
    if len(records) <= points:
        return records
    stride = len(records) / points
    return [records[int(i * stride)] for i in range(points - 1)] + [records[-1]]
