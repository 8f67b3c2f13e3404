"""What an occlusion mask model learns from: a faceset's crops, their face labels and real occluders to paste.

The label of a crop is its face region: the hull of the 478 landmarks (the mesh reaches up the forehead
to about the hairline), minus any hand the hand model finds in the crop. Nobody draws a polygon. The
model learns occluders from occluders pasted over the crops while it trains (train.occluders): real hands
cut out of the workspace's facesets where the hand model found them, other people's faces, patches of
the crops' own non-face pixels, and synthetic shapes, strands, bars, glasses and cups.

A folder of corrected masks (PNG, one per crop, named as the crop, white = face) overrides the computed
labels of those crops: a user's fix for the frames where the automatic label is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.collect.catalog import get_faceset
from facewright.errors import InputError
from facewright.faces.hands import CUTOUT_WIDTH, HandTracker, hand_mask
from facewright.faces.types import Mask
from facewright.media.image import read_image
from facewright.train.data import MIN_FACES, verified_digest
from facewright.train.occluders import Cutout, OccluderBank, cutout
from facewright.workspace import Workspace

HELD_OUT = 0.1  # share of the crops kept out of training to measure the model on (at least MIN_HELD_OUT)
MIN_HELD_OUT = 4
HAND_SCAN = 240  # crops of each faceset the hand model looks at for real hands (evenly spread)
OTHER_FACES = 48  # other people's face cut-outs kept as occluders
PATCHES = 64  # patches of the crops' own non-face pixels kept as occluders
CORRECTION_FIX = "save one PNG per crop, named as the crop in faces/, of the crop's size (white = face, black = not)"


@dataclass
class MaskSet:
    """One faceset's crops (N x R x R x 3 uint8) and face labels (N x R x R float32 0..1), in catalog order;
    `names` the crop files' stems; `held_out` the indices the model does not train on."""

    name: str
    face_type: str
    images: NDArray[np.uint8] = field(repr=False)
    labels: NDArray[np.float32] = field(repr=False)
    names: list[str] = field(repr=False)
    bank: OccluderBank = field(repr=False)
    sha256: str = ""  # of the crops, as the pair trainer records it
    hands_found: int = 0  # crops of this faceset with a hand in them (their labels leave the hand out)
    corrected: int = 0  # labels replaced by the user's masks
    held_out: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def train_indices(self) -> list[int]:
        held = set(self.held_out)
        return [i for i in range(len(self)) if i not in held]


def load_mask_set(ws: Workspace, name: str, resolution: int, *, corrections: Path | None = None,
                  min_faces: int = MIN_FACES) -> MaskSet:
    """Faceset `name`'s kept crops at `resolution` px with their labels, and a bank of occluders from every
    faceset of the workspace."""
    faceset = get_faceset(ws, name)
    rows = _kept(ws, faceset.id)
    if len(rows) < min_faces:
        raise InputError(f"faceset {name!r} has {len(rows)} faces; a mask model needs at least {min_faces}",
                         path=faceset.folder, fix="extract more footage of this person first")
    digest = verified_digest(faceset.folder, rows)
    names = [Path(r["crop_path"]).stem for r in rows]
    # checked before the hand scan of every crop: a wrong file is refused in a moment, not after it
    corrected = _read_corrections(corrections, names, faceset.size) if corrections else {}
    with HandTracker(video=False, max_hands=2) as hands:
        images, labels, cutouts = [], [], []
        for row in rows:
            image, label, hand = _labelled(faceset.folder, row, hands)
            images.append(_resize(image, resolution))
            labels.append(_resize(label, resolution))
            if hand is not None:
                cutouts.append(hand)
        found = len(cutouts)
        bank = OccluderBank(hands=cutouts)
        _other_facesets(ws, faceset.id, hands, bank)
    labels_array = np.stack(labels)
    for index, mask in corrected.items():
        labels_array[index] = _resize(mask, resolution)
    images_array = np.stack(images)
    bank.patches.extend(_patches(images_array, labels_array, np.random.default_rng(0)))
    held = max(MIN_HELD_OUT, round(HELD_OUT * len(rows)))
    held_out = [int(i) for i in np.linspace(0, len(rows) - 1, held).round()]  # spread over the footage
    return MaskSet(name, faceset.face_type, images_array, labels_array, names, bank, digest, found, len(corrected),
                   sorted(set(held_out)))


def face_label(shape_hw: tuple[int, ...], points: NDArray) -> Mask:
    """The filled hull of the mesh's points (N x 2 pixels of this crop): the face up to the hairline."""
    mask = np.zeros(shape_hw[:2], np.float32)
    hull = cv2.convexHull(np.rint(np.asarray(points, np.float64)[:, :2] * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_8, shift=4)
    return mask


def _kept(ws: Workspace, faceset_id: int) -> list:
    return ws.conn.execute("SELECT crop_path, landmarks, matrix, crop_sha256 FROM faces WHERE faceset_id = ? "
                           "AND status = 'kept' ORDER BY id", (faceset_id,)).fetchall()


def _labelled(folder: Path, row, hands: HandTracker) -> tuple[NDArray[np.uint8], Mask, Cutout | None]:
    """A crop, its label (the mesh's hull less any hand) and the hand's cut-out if there is one."""
    image = read_image(folder / row["crop_path"])
    points = np.frombuffer(row["landmarks"], np.float32).reshape(-1, 3)[:, :2]
    matrix = np.frombuffer(row["matrix"], np.float64).reshape(2, 3)
    label = face_label(image.shape, points @ matrix[:, :2].T + matrix[:, 2])
    found = hands.detect(image)
    if not found:
        return image, label, None
    covered = hand_mask(image.shape, found)
    return image, label * (1 - covered), cutout(image, hand_mask(image.shape, found, finger=CUTOUT_WIDTH), "hand")


def _other_facesets(ws: Workspace, own: int, hands: HandTracker, bank: OccluderBank) -> None:
    """Hands and faces from the workspace's other facesets, a spread sample of each."""
    others = ws.conn.execute("SELECT id, name FROM facesets WHERE id != ? ORDER BY id", (own,)).fetchall()
    for other in others:
        faceset = get_faceset(ws, other["name"])
        rows = _kept(ws, other["id"])
        if not rows:
            continue
        step = max(1, len(rows) // HAND_SCAN)
        faces_every = max(1, len(rows) // max(1, OTHER_FACES // max(1, len(others))))
        for i, row in enumerate(rows[::step]):
            path = faceset.folder / row["crop_path"]
            if not path.is_file():
                continue
            image, label, hand = _labelled(faceset.folder, row, hands)
            if hand is not None:
                bank.hands.append(hand)
            if (i * step) % faces_every == 0 and (face := cutout(image, label, "face")) is not None:
                bank.faces.append(face)


def _patches(images: NDArray[np.uint8], labels: NDArray[np.float32], rng: np.random.Generator) -> list[Cutout]:
    """Blobs of the crops' own non-face pixels (hair, clothes, the room) as occluders."""
    found = []
    size = images.shape[1]
    for _ in range(PATCHES * 2):
        if len(found) >= PATCHES:
            break
        i = int(rng.integers(len(images)))
        blob = np.zeros((size, size), np.float32)
        centre = (int(rng.integers(size)), int(rng.integers(size)))
        axes = (int(rng.integers(size // 10, size // 4)), int(rng.integers(size // 10, size // 4)))
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        blob *= labels[i] < 0.5
        if blob.sum() > 0.5 * np.pi * axes[0] * axes[1] and (patch := cutout(images[i], blob, "patch")) is not None:
            found.append(patch)
    return found


def _read_corrections(folder: Path, names: list[str], stored: int) -> dict[int, Mask]:
    """The folder's masks (0/1, `stored` px) by the index of the crop each replaces the label of; InputError for a
    file that names no crop or is not a mask."""
    if not folder.is_dir():
        raise InputError("the folder of corrected masks does not exist", path=folder, fix=CORRECTION_FIX)
    index = {name: i for i, name in enumerate(names)}
    masks: dict[int, Mask] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".png" or path.name.startswith("."):
            continue
        if path.stem not in index:
            raise InputError(f"{path.name} is not named after a kept crop of this faceset", path=path,
                             fix=CORRECTION_FIX)
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError("not a readable PNG image", path=path, fix=CORRECTION_FIX)
        if mask.shape != (stored, stored):
            raise InputError(f"the mask is {mask.shape[1]} x {mask.shape[0]} pixels, the crops {stored} x {stored}",
                             path=path, fix=CORRECTION_FIX)
        masks[index[path.stem]] = (mask > 127).astype(np.float32)
    if not masks:
        raise InputError("the folder holds no PNG masks", path=folder, fix=CORRECTION_FIX)
    return masks


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    if array.shape[0] == size:
        return array
    interpolation = cv2.INTER_AREA if array.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(array, (size, size), interpolation=interpolation)
