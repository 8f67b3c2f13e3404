"""Box overlap measures for (x0, y0, x1, y1) pixel boxes, as N x M matrices."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def _areas_and_intersections(a: NDArray, b: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    a, b = np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4)
    inter = np.prod(np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]),
                            0, None), axis=2)
    area_a, area_b = (np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1) for x in (a, b))
    return area_a, area_b, inter


def box_iou(a: NDArray, b: NDArray) -> NDArray[np.float32]:
    """Intersection over union of N x 4 and M x 4 boxes; 0 where both are empty."""
    area_a, area_b, inter = _areas_and_intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_containment(a: NDArray, b: NDArray) -> NDArray[np.float32]:
    """Intersection over the smaller box's area (N x M): 1 when one box lies inside the other."""
    area_a, area_b, inter = _areas_and_intersections(a, b)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
