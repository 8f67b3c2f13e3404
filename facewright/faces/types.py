"""Typed contracts shared by the face modules. Coordinates are pixels of the image they came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

Points: TypeAlias = NDArray[np.float32]  # N x 2, (x, y) in pixels
Matrix: TypeAlias = NDArray[np.float64]  # 2 x 3 affine, maps (x, y, 1) -> (x', y')
Mask: TypeAlias = NDArray[np.float32]  # H x W in 0..1


@dataclass(frozen=True)
class Detection:
    """A face found by a detector. `box` is (x0, y0, x1, y1) in pixels; `keypoints` are optional K x 2."""

    box: NDArray[np.float32] = field(repr=False)
    score: float
    keypoints: Points | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def center(self) -> NDArray[np.float32]:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)
