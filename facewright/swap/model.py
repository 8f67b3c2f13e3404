"""A trained pair model, loaded for swapping: the EMA weights of a checkpoint, on the device, in batches.

Swapping renders B's face crops as person A (`model(crop, "a")`): A's identity in B's pose, expression and
light. The checkpoint says everything needed: the architecture, the crop (face type, resolution), the
two people (faceset names) and their consent ids; its sha256 goes into every output's manifest.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray

from facewright.errors import CheckpointError, InputError
from facewright.files import sha256_file
from facewright.names import NAME_RULE, check_name
from facewright.train.augment import from_crops
from facewright.train.checkpoint import MODELS, latest_checkpoint, load_checkpoint
from facewright.train.distributed import Dist, pick_device
from facewright.train.models import PairModel, create_model

if TYPE_CHECKING:  # the renderer itself needs no workspace (nor its media and catalog imports)
    from facewright.workspace import Workspace

MODEL_FIX = f"give a model folder or checkpoint file that exists, or a model's name ({NAME_RULE})"
Crops = NDArray[np.uint8]  # N x S x S x 3 RGB, aligned faces at the model's resolution


@dataclass(frozen=True)
class SwapModel:
    name: str  # the model folder's name
    checkpoint: Path
    sha256: str  # of the checkpoint file
    step: int
    source: str  # faceset (identity) whose face is put in: person A
    target: str  # faceset (identity) whose footage the model learned: person B
    face_type: str
    consent_ids: tuple[str, str]  # (A, B) at training time
    network: PairModel
    device: torch.device

    @property
    def resolution(self) -> int:
        return self.network.resolution

    @torch.no_grad()
    def render(self, crops: Crops) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """A's face for each crop of B: (N x S x S x 3 RGB, N x S x S mask), float32 in [0, 1]."""
        if len(crops) == 0:
            size = self.resolution
            return np.zeros((0, size, size, 3), np.float32), np.zeros((0, size, size), np.float32)
        return render_crops(self.network, crops, self.device)


@torch.no_grad()
def render_crops(network: PairModel, crops: Crops, device: torch.device
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """`network`'s A for each of (at least one) crops, on `device` (CUDA: channels_last, bf16): faces
    N x S x S x 3 and masks N x S x S, float32 in [0, 1]."""
    x = from_crops(crops, device)
    cuda = device.type == "cuda"
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        image, mask = network(x, "a")
    return image.float().permute(0, 2, 3, 1).cpu().numpy(), mask.float()[:, 0].cpu().numpy()


def resolve_checkpoint(ws: Workspace, model: str | Path) -> Path:
    """`model`: a model folder name in the workspace, a model folder, or a checkpoint file.

    A value that exists (or names a .pt file) is a path; anything else is a name, which must be one (names.py):
    "../x" that does not exist is refused as a name, never looked up outside the models folder.
    """
    path = Path(model)
    if path.suffix == ".pt":
        return path
    folder = path if path.is_dir() else ws.root / MODELS / check_name(str(model), "--model", fix=MODEL_FIX)
    if not folder.is_dir():
        names = sorted(p.name for p in (ws.root / MODELS).glob("*") if p.is_dir())
        raise InputError(f"no model named {model!r}", path=ws.root / MODELS,
                         fix=f"train one first (facewright train) or use one of: {', '.join(names) or 'none yet'}")
    found = latest_checkpoint(folder / "checkpoints")
    if found is None:
        raise CheckpointError("the model has no checkpoint yet", path=folder / "checkpoints",
                              fix="train it for at least one checkpoint (facewright train ...)")
    return found


def load_swap_model(ws: Workspace, model: str | Path, device: str = "auto") -> SwapModel:
    """The EMA generator of the model's newest checkpoint (or of the checkpoint file given), ready to render."""
    path = resolve_checkpoint(ws, model)
    state = load_checkpoint(path)
    place = pick_device(device, Dist())
    spec = state["model"]
    network = create_model(spec["name"], spec["resolution"], **spec["options"])
    network.load_state_dict(state["ema"])
    network = network.to(place).eval().requires_grad_(False)
    if place.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
    facesets = state["facesets"]
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return SwapModel(folder.name, path, sha256_file(path), int(state["step"]), facesets["a"]["name"],
                     facesets["b"]["name"], facesets["b"]["face_type"],
                     (state["consent"]["a"], state["consent"]["b"]), network, place)
