"""Training data: a faceset's kept crops, masks and eyes+mouth masks, loaded once into uint8 tensors.

Decoding PNGs every step would starve a GPU; a faceset of 5000 crops at 256 px is ~1 GB as uint8 and
sits on the training device, where `Augmenter` turns random batches of it into float inputs and targets.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from facewright.collect.catalog import get_faceset
from facewright.errors import InputError, OptionError
from facewright.faces.align import transform_points
from facewright.faces.landmarks import MESH_TO_68
from facewright.faces.mask import component_masks
from facewright.media.image import read_image
from facewright.workspace import Workspace

MIN_FACES = 32  # below this a model memorises a few pictures instead of learning a face


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

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.images[index], self.masks[index], self.priority[index]


def load_faceset(ws: Workspace, name: str, resolution: int, *, device: torch.device | str = "cpu",
                 min_faces: int = MIN_FACES) -> FacesetTensors:
    """Load faceset `name`'s kept faces at `resolution` px (resampled if stored at another size)."""
    faceset = get_faceset(ws, name)
    faces = ws.conn.execute("SELECT crop_path, mask_path, landmarks, matrix, embedding FROM faces "
                            "WHERE faceset_id = ? AND status = 'kept' ORDER BY id", (faceset.id,)).fetchall()
    if len(faces) < min_faces:
        raise InputError(f"faceset {name!r} has {len(faces)} faces; training needs at least {min_faces}",
                         path=faceset.folder,
                         fix="extract more footage of this person (more clips, --every 1, a lower --dedupe)")
    folder = faceset.folder
    arrays = [_load_face(folder, face, faceset.size, resolution) for face in faces]
    images, masks, priority = (torch.from_numpy(np.stack(parts)).to(device) for parts in zip(*arrays, strict=True))
    embeddings = np.stack([np.frombuffer(f["embedding"], np.float32) for f in faces if f["embedding"] is not None])
    return FacesetTensors(name, images, masks, priority, embeddings, faceset.face_type, _digest(folder, faces))


def _load_face(folder: Path, face, stored: int, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3 x R x R image, 1 x R x R mask, 1 x R x R eyes+mouth) uint8 of one catalog face."""
    crop_path = folder / face["crop_path"]
    if not crop_path.is_file():
        raise InputError("a kept face's crop is missing", path=crop_path,
                         fix=f"sync the catalog with the folder: facewright faceset prune {folder.name}")
    image = read_image(crop_path)
    mask = _read_gray(folder / face["mask_path"], image.shape[:2])
    points = np.frombuffer(face["landmarks"], np.float32).reshape(-1, 3)[MESH_TO_68, :2]
    matrix = np.frombuffer(face["matrix"], np.float64).reshape(2, 3)
    parts = component_masks(image.shape[:2], transform_points(points, matrix))
    priority = np.maximum(parts["eyes"], parts["mouth"])
    if stored != resolution or image.shape[0] != resolution:
        image = cv2.resize(image, (resolution, resolution), interpolation=_interpolation(image.shape[0], resolution))
        mask = cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
        priority = cv2.resize(priority, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
    return image.transpose(2, 0, 1), _u8(mask)[None], _u8(priority)[None]


def _read_gray(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None or mask.shape != shape:
        raise InputError("a kept face's mask is missing or damaged", path=path,
                         fix=f"re-extract this faceset, or run: facewright faceset prune {path.parent.parent.name}")
    return mask


def _u8(mask: np.ndarray) -> np.ndarray:
    if mask.dtype == np.uint8:
        return mask
    return np.clip(np.rint(mask * 255.0 if mask.max() <= 1.0 else mask), 0, 255).astype(np.uint8)


def _interpolation(size: int, target: int) -> int:
    return cv2.INTER_AREA if target < size else cv2.INTER_CUBIC


def _digest(folder: Path, faces) -> str:
    digest = hashlib.sha256()
    for face in faces:
        digest.update((folder / face["crop_path"]).read_bytes())
    return digest.hexdigest()


def check_pair(a: FacesetTensors, b: FacesetTensors) -> None:
    """Both facesets must be crops of the same face type: a model learns one framing."""
    if a.face_type != b.face_type:
        raise OptionError(f"facesets {a.name!r} ({a.face_type}) and {b.name!r} ({b.face_type}) are cropped "
                          "differently", fix="extract both with the same --face-type")
