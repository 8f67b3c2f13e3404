"""A trained occlusion mask model, loaded for use: which pixels of aligned face crops are the face.

The crops are aligned the way the mask model's faceset was (its face type), at the model's resolution;
`predict` gives the face probability per pixel. A swap warps that into its own crop (swap.occlusion).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from facewright.collect.catalog import get_faceset
from facewright.errors import CheckpointError, InputError
from facewright.faces.align import alignment_matrix, compose, invert
from facewright.faces.landmarks import MESH_TO_68
from facewright.files import sha256_file
from facewright.media.image import read_image, write_image
from facewright.names import NAME_RULE
from facewright.progress import ProgressFactory, no_progress
from facewright.train.augment import from_crops
from facewright.train.checkpoint import latest_checkpoint, load_checkpoint
from facewright.train.data import read_mask
from facewright.train.distributed import Dist, pick_device
from facewright.train.mask_trainer import KIND, MASK_MODELS, mask_folder
from facewright.train.models.segmenter import Segmenter, create_segmenter
from facewright.workspace import Workspace


@dataclass(frozen=True)
class MaskModel:
    name: str
    checkpoint: Path
    sha256: str
    step: int
    faceset: str  # what it learned from: the person whose footage it knows
    face_type: str
    network: Segmenter
    device: torch.device

    @property
    def resolution(self) -> int:
        return self.network.resolution

    @torch.no_grad()
    def predict(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        """N x R x R face probabilities for N x R x R x 3 RGB uint8 crops (aligned as `face_type`)."""
        if len(crops) == 0:
            return np.zeros((0, self.resolution, self.resolution), np.float32)
        return self.network.predict(from_crops(crops, self.device))[:, 0].cpu().numpy()


def load_mask_model(ws: Workspace, model: str | Path, device: str = "auto") -> MaskModel:
    """The newest checkpoint of mask model `model` (a name in the workspace, a folder or a .pt file)."""
    path = Path(model)
    if path.suffix != ".pt":
        folder = path if path.is_dir() else mask_folder(ws, str(model))
        if not folder.is_dir():
            names = mask_model_names(ws)
            raise InputError(f"no mask model named {model!r}", path=ws.root / MASK_MODELS,
                             fix="train one (facewright mask train FACESET) or use one of: "
                                 f"{', '.join(names) or 'none yet'} ({NAME_RULE})")
        path = latest_checkpoint(folder / "checkpoints")
        if path is None:
            raise CheckpointError("the mask model has no checkpoint yet", path=folder / "checkpoints",
                                  fix="train it for at least one checkpoint (facewright mask train ...)")
    state = load_checkpoint(path)
    if state.get("kind") != KIND:
        raise CheckpointError("not a mask model's checkpoint (a pair model's?)", path=path,
                              fix="give a mask model: facewright mask list")
    place = pick_device(device, Dist())
    network = create_segmenter(state["model"]["name"], int(state["model"]["resolution"]))
    network.load_state_dict(state["weights"])
    network = network.to(place).eval().requires_grad_(False)
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return MaskModel(folder.name, path, sha256_file(path), int(state["step"]), state["faceset"]["name"],
                     state["faceset"]["face_type"], network, place)


def mask_model_names(ws: Workspace) -> list[str]:
    return sorted(p.name for p in (ws.root / MASK_MODELS).glob("*") if latest_checkpoint(p / "checkpoints"))


def mask_model_for(ws: Workspace, faceset: str) -> str | None:
    """The mask model named after `faceset` (what `mask train FACESET` makes), if it has a checkpoint."""
    return faceset if latest_checkpoint(mask_folder(ws, faceset) / "checkpoints") else None


@dataclass(frozen=True)
class StoredMasks:
    faceset: str
    model: str
    faces: int  # masks rewritten
    occluded: int  # of them, faces the mask model found something in front of (>= OCCLUDED_SHARE of the hull)
    seconds: float


OCCLUDED_SHARE = 0.03  # a face counts as occluded when the learned mask leaves out this much of its hull


def store_masks(ws: Workspace, faceset: str, model: MaskModel, progress: ProgressFactory = no_progress,
                batch: int = 32) -> StoredMasks:
    """Rewrite faceset `faceset`'s stored masks as the landmark hull intersected with the mask model's face:
    a pair model trained on them learns a mask that leaves occluders out. The crops are not touched."""
    start = time.perf_counter()
    found = get_faceset(ws, faceset)
    rows = ws.conn.execute("SELECT crop_path, mask_path, landmarks, matrix FROM faces WHERE faceset_id = ? AND "
                           "status = 'kept' AND mask_path IS NOT NULL ORDER BY id", (found.id,)).fetchall()
    occluded = 0
    with progress(total=len(rows), desc=f"masks {faceset}", unit="face") as bar:
        for first in range(0, len(rows), batch):
            part = rows[first:first + batch]
            crops = [read_image(found.folder / row["crop_path"]) for row in part]
            learned = _learned_in_crops(model, crops, part, found.face_type)
            for row, crop, face in zip(part, crops, learned, strict=True):
                path = found.folder / row["mask_path"]
                hull = read_mask(path, crop.shape[:2]).astype(np.float32) / 255
                mask = np.minimum(hull, face)
                occluded += int((hull - mask).sum() >= OCCLUDED_SHARE * max(1.0, hull.sum()))
                write_image(np.repeat(np.rint(mask * 255).astype(np.uint8)[..., None], 3, axis=2), path, private=True)
            bar.update(len(part))
    return StoredMasks(faceset, model.name, len(rows), occluded, time.perf_counter() - start)


def _learned_in_crops(model: MaskModel, crops: list[np.ndarray], rows, face_type: str) -> list[np.ndarray]:
    """The model's face mask (0/1) over each stored crop, aligned the model's way and warped back."""
    side = model.resolution
    inputs, back = [], []
    for crop, row in zip(crops, rows, strict=True):
        size = crop.shape[0]
        if face_type == model.face_type:
            to_model = np.array([[side / size, 0, 0], [0, side / size, 0]])
        else:
            points = np.frombuffer(row["landmarks"], np.float32).reshape(-1, 3)[MESH_TO_68, :2]
            matrix = np.frombuffer(row["matrix"], np.float64).reshape(2, 3)
            to_model = compose(alignment_matrix(points, side, model.face_type), invert(matrix))
        inputs.append(cv2.warpAffine(crop, to_model, (side, side), flags=cv2.INTER_AREA if side < size
                                     else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        back.append((invert(to_model), size))
    predicted = model.predict(np.stack(inputs))
    return [(cv2.warpAffine(p, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=1.0) >= 0.5).astype(np.float32) for p, (m, size) in zip(predicted, back,
                                                                                                   strict=True)]
