"""Identity: 128-d face embeddings (dlib ResNet), their distance, and clustering the faces of a source by person.

Embeddings are float32 vectors in dlib's metric space: two faces of one person lie within THRESHOLD (L2).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import dlib
import numpy as np
from numpy.typing import ArrayLike, NDArray

from facewright.assets import asset_path
from facewright.errors import AssetError, OptionError
from facewright.faces.types import Detection
from facewright.media.image import Frame

Embedding = NDArray[np.float32]  # (128,), or N x 128 for a batch

EMBEDDING_SIZE = 128
# dlib's published same-person cutoff: at L2 distance 0.6 its ResNet scores 99.38% on LFW pairs.
# Look-alikes can fall below it (two young women of multi_face.jpg: 0.49), so treat it as "maybe the same".
THRESHOLD = 0.6

RECOGNIZER = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR = "shape_predictor_5_face_landmarks.dat"

Box = Detection | ArrayLike  # a Detection, or (x0, y0, x1, y1) in pixels


class IdentityEncoder:
    """dlib's face-recognition ResNet behind a 5-point aligner: image + box in, 128-d embedding out.

    The model files come from the asset registry unless paths are given (tests, custom caches).
    `jitter` > 0 averages that many randomly jittered crops: ~1% more accurate, `jitter` times slower.
    One embedding costs 60-150 ms on one CPU core (dlib without BLAS here) and holds the GIL: threads don't help.
    """

    def __init__(self, recognizer: str | Path | None = None, predictor: str | Path | None = None, *,
                 jitter: int = 0):
        if jitter < 0:
            raise OptionError(f"jitter must be >= 0, got {jitter}", fix="use 0 (fast) or a small count such as 10")
        self.jitter = jitter
        self._net = _loaded(dlib.face_recognition_model_v1, recognizer or asset_path(RECOGNIZER))
        self._predictor = _loaded(dlib.shape_predictor, predictor or asset_path(PREDICTOR))

    def embed(self, image: Frame, box: Box) -> Embedding:
        """The (128,) float32 embedding of the face in `box` of `image` (H x W x 3 uint8 RGB)."""
        return self.embed_many(image, [box])[0]

    def embed_many(self, image: Frame, boxes: Sequence[Box]) -> Embedding:
        """N x 128 float32 embeddings of the faces in `boxes` of one image (H x W x 3 uint8 RGB), in order."""
        rgb = _dlib_image(image)
        if len(boxes) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        # The ResNet was trained on crops aligned by these 5 points; a raw detector box would cost accuracy.
        shapes = dlib.full_object_detections([self._predictor(rgb, _rectangle(box)) for box in boxes])
        return np.asarray(self._net.compute_face_descriptor(rgb, shapes, self.jitter), np.float32)


def _loaded(loader: Callable, path: str | Path):
    """The model at `path`, loaded once per process while the file stays as it was (the ResNet takes about
    0.4 s to load, and every extraction, swap and score makes an encoder). One model serves every encoder: a
    call holds the GIL, so two threads never run it at once."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return _load(loader, path)  # missing: _load names the file and the fix
    return _load_once(loader, str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_once(loader: Callable, path: str, size: int, mtime_ns: int):
    return _load(loader, path)


def _load(loader: Callable, path: str | Path):
    """A dlib model from `path`; dlib's bare RuntimeError becomes an AssetError naming the file."""
    try:
        return loader(str(path))
    except RuntimeError as exc:
        fix = f"pass the path of a valid {Path(path).name}, or fetch it: facewright assets fetch"
        raise AssetError(f"cannot load dlib model: {exc}", path=path, fix=fix) from exc


def _dlib_image(image: Frame) -> NDArray[np.uint8]:
    """dlib reads only C-contiguous uint8 RGB; views (crops, flips) are copied once here."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def _rectangle(box: Box) -> dlib.rectangle:
    """dlib.rectangle from a Detection or (x0, y0, x1, y1) pixels, rounded to whole pixels."""
    coords = np.asarray(box.box if isinstance(box, Detection) else box, np.float64)
    if coords.shape != (4,) or not np.all(np.isfinite(coords)) or coords[2] <= coords[0] or coords[3] <= coords[1]:
        raise ValueError(f"box must be finite (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {coords}")
    left, top, right, bottom = (int(round(v)) for v in coords)
    return dlib.rectangle(left, top, right, bottom)


def distance(a: ArrayLike, b: ArrayLike) -> NDArray[np.float32] | float:
    """L2 distance between embeddings along the last axis; (128,) vs (128,) gives a float, batches broadcast."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape[-1:] != b.shape[-1:]:
        raise ValueError(f"embeddings differ in size: {a.shape} vs {b.shape}")
    result = np.linalg.norm(a - b, axis=-1)
    return float(result) if result.ndim == 0 else result


def pairwise_distance(a: ArrayLike, b: ArrayLike) -> NDArray[np.float32]:
    """N x M L2 distances between N x D and M x D embeddings, without the N x M x D intermediate."""
    a, b = np.atleast_2d(np.asarray(a, np.float32)), np.atleast_2d(np.asarray(b, np.float32))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected N x D and M x D embeddings, got {a.shape} and {b.shape}")
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    # Rounding can make the squared distance of a vector to itself slightly negative.
    return np.sqrt(np.maximum(squared, 0))


def centroid(embeddings: ArrayLike) -> Embedding:
    """The mean of N x 128 embeddings: the point with the least summed squared L2 distance to them all."""
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"expected N x D embeddings with N >= 1, got {embeddings.shape}")
    return embeddings.mean(0)


def cluster(embeddings: ArrayLike, threshold: float = THRESHOLD) -> NDArray[np.intp]:
    """Label N x D embeddings by person: (N,) ints, 0 = the largest cluster, 1 = the next, ...

    Average linkage: two groups merge while the mean distance between their faces is <= threshold.
    Single linkage would chain two people through one blurry in-between face; complete linkage would split one
    person whose frontal and profile faces are a little over the threshold apart. The mean tolerates both.
    Cost: O(N^2) time and N x N float64 memory (5000 faces: 200 MB); deduplicate long videos first.
    """
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"expected N x D embeddings, got {embeddings.shape}")
    if not threshold > 0:
        raise OptionError(f"cluster threshold must be > 0, got {threshold}", fix=f"dlib's default is {THRESHOLD}")
    groups = _average_linkage(pairwise_distance(embeddings, embeddings).astype(np.float64), threshold)
    # Largest first; ties go to the group holding the earliest face, so labels do not depend on merge order.
    groups.sort(key=lambda members: (-len(members), min(members)))
    labels = np.empty(len(embeddings), np.intp)
    for label, members in enumerate(groups):
        labels[members] = label
    return labels


def largest_cluster(labels: ArrayLike) -> NDArray[np.bool_]:
    """Boolean mask of the faces in the largest cluster (label 0 as `cluster` orders them)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("no labels: there is no largest cluster of zero faces")
    return labels == 0


def _average_linkage(dist: NDArray[np.float64], threshold: float) -> list[list[int]]:
    """Groups of indices from an N x N distance matrix, by the nearest-neighbour-chain algorithm (O(N^2)).

    Follows nearest neighbours until two clusters are each other's nearest, then merges them. A chain whose last
    step is longer than the threshold is final: average linkage never brings a cluster closer to the others
    by merging them, so those clusters would only ever merge above the threshold.
    """
    np.fill_diagonal(dist, np.inf)
    members = [[i] for i in range(len(dist))]
    open_ = np.ones(len(dist), bool)  # clusters that may still merge
    chain: list[int] = []
    while open_.any():
        chain = chain or [int(np.flatnonzero(open_)[0])]
        here, nearest, gap = _nearest(dist, open_, chain)
        if gap > threshold:
            open_[chain] = False
            chain = []
        elif len(chain) > 1 and nearest == chain[-2]:
            chain = chain[:-2]
            _merge(dist, members, open_, here, nearest)
        else:
            chain.append(nearest)
    return [group for group in members if group]


def _nearest(dist: NDArray[np.float64], open_: NDArray[np.bool_], chain: list[int]) -> tuple[int, int, float]:
    """(chain end, its nearest open cluster, their distance); a tie goes back down the chain so it terminates."""
    here = chain[-1]
    row = np.where(open_, dist[here], np.inf)
    nearest = int(np.argmin(row))
    if len(chain) > 1 and row[chain[-2]] <= row[nearest]:
        nearest = chain[-2]
    return here, nearest, float(row[nearest])


def _merge(dist: NDArray[np.float64], members: list[list[int]], open_: NDArray[np.bool_], a: int, b: int) -> None:
    """Fold cluster b into a, updating a's distances to the size-weighted mean (Lance-Williams, average)."""
    na, nb = len(members[a]), len(members[b])
    dist[a] = dist[:, a] = (na * dist[a] + nb * dist[b]) / (na + nb)
    dist[a, a] = np.inf
    members[a] += members[b]
    members[b] = []
    open_[b] = False
