"""One person's training faces as uint8 tensors: what a training step draws from (no I/O, no identity models).

`train.data` fills it from a workspace's faceset; `bench.gpu_node` from a GPU bench bundle. It imports only
torch and numpy, so the training path runs on a node without facewright's media and provenance dependencies.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class FacesetTensors:
    """One person's training faces. Tensors are N x C x R x R uint8 on `images.device`."""

    name: str
    images: Tensor  # N x 3 x R x R, RGB
    masks: Tensor  # N x 1 x R x R, 255 = face
    priority: Tensor  # N x 1 x R x R, 255 = eyes and mouth
    embeddings: np.ndarray  # N x 128 float32: identity of each face (for the consent check)
    face_type: str
    sha256: str  # of the faces' crop files in order: a checkpoint names exactly what it learned from
    poses: np.ndarray | None = field(default=None, repr=False)  # N x 2 float32 yaw, pitch in degrees (NaN: unknown)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.images[index], self.masks[index], self.priority[index]
