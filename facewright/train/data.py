"""Training data: a faceset's kept crops, masks and eyes+mouth masks, loaded once into uint8 tensors.

Decoding PNGs every step would starve a GPU; a faceset of 5000 crops at 256 px is ~1 GB as uint8 and
sits on the training device, where `Augmenter` turns random batches of it into float inputs and targets.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import cv2
import numpy as np
import torch

from facewright.collect.catalog import get_faceset
from facewright.errors import ConsentError, InputError, OptionError
from facewright.faces.align import transform_points
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import MESH_TO_68
from facewright.faces.mask import component_masks
from facewright.faces.sface import SFaceEncoder, align
from facewright.files import sha256_file
from facewright.media.image import read_image
from facewright.provenance.likeness import Check, Reference, judge
from facewright.train.tensors import FacesetTensors
from facewright.workspace import Workspace

MIN_FACES = 32  # below this a model memorises a few pictures instead of learning a face
LIKENESS_SAMPLE = 12  # crops of each faceset checked against the consent photo before training (~0.3 s)
MOST_UNLIKE = 0.25  # share of the checked crops that may fail (an odd crop) before the faceset is refused


def load_faceset(ws: Workspace, name: str, resolution: int, *, device: torch.device | str = "cpu",
                 min_faces: int = MIN_FACES) -> FacesetTensors:
    """Load faceset `name`'s kept faces at `resolution` px (resampled if stored at another size)."""
    faceset = get_faceset(ws, name)
    faces = ws.conn.execute("SELECT crop_path, mask_path, landmarks, matrix, embedding, crop_sha256, yaw, pitch "
                            "FROM faces WHERE faceset_id = ? AND status = 'kept' ORDER BY id", (faceset.id,)).fetchall()
    if len(faces) < min_faces:
        raise InputError(f"faceset {name!r} has {len(faces)} faces; training needs at least {min_faces}",
                         path=faceset.folder,
                         fix="extract more footage of this person (more clips, --every 1, a lower --dedupe)")
    folder = faceset.folder
    digest = verified_digest(folder, faces)
    arrays = [_load_face(folder, face, faceset.size, resolution) for face in faces]
    images, masks, priority = (torch.from_numpy(np.stack(parts)).to(device) for parts in zip(*arrays, strict=True))
    embeddings = np.stack([np.frombuffer(f["embedding"], np.float32) for f in faces if f["embedding"] is not None])
    poses = np.array([(f["yaw"], f["pitch"]) for f in faces], np.float32)  # None (no pose) -> NaN
    return FacesetTensors(name, images, masks, priority, embeddings, faceset.face_type, digest, poses)


def _load_face(folder: Path, face, stored: int, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3 x R x R image, 1 x R x R mask, 1 x R x R eyes+mouth) uint8 of one catalog face."""
    image = read_image(folder / face["crop_path"])  # there: checked by verified_digest
    mask = read_mask(folder / face["mask_path"], image.shape[:2])
    points = np.frombuffer(face["landmarks"], np.float32).reshape(-1, 3)[MESH_TO_68, :2]
    matrix = np.frombuffer(face["matrix"], np.float64).reshape(2, 3)
    parts = component_masks(image.shape[:2], transform_points(points, matrix))
    priority = np.maximum(parts["eyes"], parts["mouth"])
    if stored != resolution or image.shape[0] != resolution:
        image = cv2.resize(image, (resolution, resolution), interpolation=_interpolation(image.shape[0], resolution))
        mask = cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
        priority = cv2.resize(priority, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
    return image.transpose(2, 0, 1), _u8(mask)[None], _u8(priority)[None]


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
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


def verified_digest(folder: Path, faces) -> str:
    """The sha256 of the crop files in order, after checking each against the sha256 extraction recorded.

    A crop that changed since extraction (overwritten with another person's face, say) is not the face whose
    identity was checked against the consent photo: training refuses it. Crops extracted before hashes were
    recorded (NULL) are checked by `check_likeness` instead.
    """
    digest, changed = hashlib.sha256(), []
    for face in faces:
        path = folder / face["crop_path"]
        if not path.is_file():
            raise InputError("a kept face's crop is missing", path=path,
                             fix=f"sync the catalog with the folder: facewright faceset prune {folder.name}")
        data = path.read_bytes()
        digest.update(data)
        if face["crop_sha256"] is not None and hashlib.sha256(data).hexdigest() != face["crop_sha256"]:
            changed.append(face["crop_path"])
    if changed:
        raise ConsentError(f"{len(changed)} crop(s) of faceset {folder.name!r} changed after extraction "
                           f"({', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}): they are not the faces "
                           "that were checked against the consent photo", path=folder,
                           fix=f"extract the faceset again (facewright extract INPUT... --identity {folder.name}), or "
                               f"delete the changed crops and run: facewright faceset prune {folder.name}")
    return digest.hexdigest()


def check_likeness(ws: Workspace, name: str, reference: Reference, sface: SFaceEncoder, dlib: IdentityEncoder,
                   sample: int = LIKENESS_SAMPLE) -> None:
    """Check a random sample of faceset `name`'s crops (and every crop with no recorded hash) against the
    consent photo (provenance.likeness); ConsentError naming the crops when too many are someone else.

    The sample is drawn afresh each time, so which crops are looked at cannot be known in advance. Crops
    extracted before hashes were recorded get their hash once they pass.
    """
    faceset = get_faceset(ws, name)
    rows = ws.conn.execute("SELECT id, crop_path, landmarks, matrix, crop_sha256 FROM faces WHERE faceset_id = ? "
                           "AND status = 'kept' ORDER BY id", (faceset.id,)).fetchall()
    unhashed = [r for r in rows if r["crop_sha256"] is None]
    hashed = [r for r in rows if r["crop_sha256"] is not None]
    picked = random.SystemRandom().sample(hashed, min(sample, len(hashed))) + unhashed
    failed = [r for r in picked if not _crop_check(faceset.folder / r["crop_path"], r, reference, sface, dlib).passed]
    if failed and (len(failed) > MOST_UNLIKE * len(picked) or any(r["crop_sha256"] is None for r in failed)):
        names = ", ".join(r["crop_path"] for r in failed[:3]) + (" ..." if len(failed) > 3 else "")
        raise ConsentError(f"{len(failed)} of {len(picked)} crops of faceset {name!r} checked are not the person in "
                           f"the consent photo ({names})", path=faceset.folder,
                           fix=f"delete those crops and run facewright faceset prune {name}, or extract the faceset "
                               "again from footage of the consenting person only")
    with ws.transaction():
        ws.conn.executemany("UPDATE faces SET crop_sha256 = ? WHERE id = ?",
                            [(sha256_file(faceset.folder / r["crop_path"]), r["id"]) for r in unhashed])


def _crop_check(path: Path, row, reference: Reference, sface: SFaceEncoder, dlib: IdentityEncoder) -> Check:
    crop = read_image(path)
    points = transform_points(np.frombuffer(row["landmarks"], np.float32).reshape(-1, 3)[MESH_TO_68, :2],
                              np.frombuffer(row["matrix"], np.float64).reshape(2, 3))
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return judge(reference, sface, dlib, int(row["id"]), align(crop, points), crop, (x0, y0, x1, y1))


def check_pair(a: FacesetTensors, b: FacesetTensors) -> None:
    """Both facesets must be crops of the same face type: a model learns one framing."""
    if a.face_type != b.face_type:
        raise OptionError(f"facesets {a.name!r} ({a.face_type}) and {b.name!r} ({b.face_type}) are cropped "
                          "differently", fix="extract both with the same --face-type")
