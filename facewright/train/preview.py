"""What a training run shows its user: a preview grid of the model's faces and a loss curve.

The A->B and B->A rows are swapped faces, so a preview is labelled, watermarked and signed like every other
output. The signing identity is the caller's (facewright.api loads it once): a run without one cannot write
previews, and `PreviewWriter` refuses it before training starts rather than after hours of it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from facewright.errors import ProvenanceError
from facewright.media.image import Frame, write_image
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, mark_image
from facewright.train.augment import to_float
from facewright.train.batches import Pair

ROWS = ("A", "A->A", "A->B", "B", "B->B", "B->A")
TILE = 128  # preview faces are shown at most this big, so a 512 px model's preview stays a sane size
PREVIEW_FACES = 6


class PreviewWriter:
    """Writes a run's previews into `folder`: preview.png (and previews/step_N.png with `timelapse`) and loss.png."""

    def __init__(self, folder: Path, pair: Pair, resolution: int, device: torch.device, *, timelapse: bool,
                 signer: SigningIdentity | None):
        if signer is None:
            raise ProvenanceError("training previews show swapped faces and must be signed, but no signing "
                                  "identity was given", path=folder,
                                  fix="pass signer=facewright.provenance.keys.load_identity() (facewright.api.train "
                                      "does), or turn previews off with --preview-every 0")
        self.folder, self.pair, self.resolution, self.device = folder, pair, resolution, device
        self.timelapse, self.signer = timelapse, signer

    def write(self, model: torch.nn.Module, step: int) -> Path:
        """Render `model`'s (the EMA's) grid at `step`, mark it, and redraw the loss curve; returns preview.png."""
        grid = preview_grid(model, self._faces(self.pair.a.images), self._faces(self.pair.b.images))
        plan = MarkPlan(Label("ai-generated"), (self.pair.consent_a, self.pair.consent_b), model=self.folder.name)
        path = mark_image(grid, self.folder / "preview.png", plan, self.signer)
        if self.timelapse:
            mark_image(grid, self.folder / "previews" / f"step_{step:07d}.png", plan, self.signer)
        write_image(loss_plot(*read_losses(self.folder / "metrics.jsonl")), self.folder / "loss.png")
        return path

    def _faces(self, images: Tensor) -> Tensor:
        faces = to_float(images[:PREVIEW_FACES].to(self.device))
        if faces.shape[-1] == self.resolution:
            return faces
        size = (self.resolution, self.resolution)
        return torch.nn.functional.interpolate(faces, size=size, mode="bilinear", antialias=True)


@torch.no_grad()
def preview_grid(model: torch.nn.Module, a: Tensor, b: Tensor) -> Frame:
    """Rows A, A->A, A->B, B, B->B, B->A of k faces each (a, b: k x 3 x R x R float in [0, 1])."""
    model.eval()
    rows = [a, model(a, "a")[0], model(a, "b")[0], b, model(b, "b")[0], model(b, "a")[0]]
    tiles = [_row(r.float()) for r in rows]
    labelled = [_label(tile, name) for tile, name in zip(tiles, ROWS, strict=True)]
    return np.concatenate(labelled, axis=0)


def _row(images: Tensor) -> np.ndarray:
    size = min(TILE, images.shape[-1])
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="area") if size < images.shape[-1] \
        else images
    array = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return np.concatenate(list(array), axis=1)


def _label(row: np.ndarray, name: str) -> np.ndarray:
    gutter = np.full((row.shape[0], 56, 3), 24, np.uint8)
    cv2.putText(gutter, name, (4, row.shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1,
                cv2.LINE_AA)
    return np.concatenate([gutter, np.ascontiguousarray(row)], axis=1)


def loss_plot(steps: list[int], losses: list[float], width: int = 640, height: int = 320) -> Frame:
    """The total loss over steps on a log scale, drawn with OpenCV (no plotting library needed)."""
    image = np.full((height, width, 3), 255, np.uint8)
    margin = 48
    if len(steps) < 2:
        cv2.putText(image, "not enough steps logged yet", (margin, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
        return image
    logs = np.log10(np.maximum(np.asarray(losses, np.float64), 1e-12))
    low, high = math.floor(logs.min() * 4) / 4, math.ceil(logs.max() * 4) / 4 + 1e-9
    xs = margin + (np.asarray(steps) - steps[0]) / max(1, steps[-1] - steps[0]) * (width - 2 * margin)
    ys = height - margin - (logs - low) / (high - low) * (height - 2 * margin)
    cv2.rectangle(image, (margin, margin), (width - margin, height - margin), (200, 200, 200), 1)
    cv2.polylines(image, [np.stack([xs, ys], 1).round().astype(np.int32)], False, (200, 60, 20), 1, cv2.LINE_AA)
    for text, y in ((f"{10 ** high:.3g}", margin), (f"{10 ** low:.3g}", height - margin)):
        cv2.putText(image, text, (2, int(y) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"loss, steps {steps[0]}-{steps[-1]}", (margin, margin - 12), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def read_losses(path: Path) -> tuple[list[int], list[float]]:
    """(steps, total losses) logged in a metrics.jsonl."""
    if not path.is_file():
        return [], []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["step"] for r in records], [r["loss"] for r in records]
