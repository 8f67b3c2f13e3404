"""Person A as the score knows them: a mean identity embedding for each recognizer (dlib's, SFace's), from a
faceset, a photo or a video."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewright.collect.catalog import faceset_embeddings, get_faceset
from facewright.errors import InputError, NoFaceError
from facewright.faces.align import transform_points
from facewright.faces.identity import Embedding, IdentityEncoder, centroid, cluster, largest_cluster
from facewright.faces.landmarks import MESH_TO_68, FaceLandmarks, Landmarker
from facewright.faces.sface import Feature, SFaceEncoder, align
from facewright.files import require_file
from facewright.media.image import read_image
from facewright.media.kind import MediaKind, media_kind
from facewright.media.video import read_video
from facewright.score.frames import video_stream
from facewright.workspace import Workspace

SOURCE_FRAMES = 16  # frames of a source video embedded for A's identity
SFACE_CROPS = 48  # kept crops of a faceset, spread over it, whose SFace features make A's (~16 ms each)


@dataclass(frozen=True)
class Source:
    """Person A as the score knows them: dlib's mean embedding, SFace's mean feature (unit length), and where
    they came from."""

    embedding: Embedding
    sface: Feature
    description: str


def source_from_faceset(ws: Workspace, name: str, sface: SFaceEncoder) -> Source | None:
    """A from faceset `name`'s kept faces: the mean of their recorded dlib embeddings, and the mean SFace
    feature of up to SFACE_CROPS of their crops; None if there is no such faceset."""
    embeddings = faceset_embeddings(ws, name)
    if embeddings is None:
        return None
    if len(embeddings) == 0:
        raise NoFaceError(f"faceset {name}: no face embeddings to describe person A",
                          fix="give a faceset with kept faces, or a photo or video of A")
    features = _faceset_features(ws, name, sface)
    return Source(centroid(embeddings), mean_feature(features),
                  f"faceset {name} ({len(embeddings)} faces, {len(features)} for SFace)")


def _faceset_features(ws: Workspace, name: str, sface: SFaceEncoder) -> np.ndarray:
    """SFace features of up to SFACE_CROPS kept crops spread over the faceset, each aligned by its own
    landmarks (recorded in frame pixels; the crop's matrix takes them into the crop)."""
    faceset = get_faceset(ws, name)
    rows = ws.conn.execute("SELECT crop_path, landmarks, matrix FROM faces WHERE faceset_id = ? AND status = 'kept' "
                           "AND crop_path IS NOT NULL ORDER BY id", (faceset.id,)).fetchall()
    picked = [rows[i] for i in sorted({round(i) for i in np.linspace(0, len(rows) - 1, min(len(rows), SFACE_CROPS))})]
    crops = []
    for row in picked:
        path = faceset.folder / row["crop_path"]
        if path.is_file():
            points = transform_points(np.frombuffer(row["landmarks"], np.float32).reshape(-1, 3)[MESH_TO_68, :2],
                                      np.frombuffer(row["matrix"], np.float64).reshape(2, 3))
            crops.append(align(read_image(path), points))
    if not crops:
        raise InputError(f"faceset {name}: none of its kept faces' crops is on disk", path=faceset.folder,
                         fix=f"sync the catalog with the folder (facewright faceset prune {name}), or extract again")
    return sface.embed_crops(crops)


def mean_feature(features: np.ndarray) -> Feature:
    """The unit mean of N x 128 unit SFace features: the direction they share."""
    mean = np.asarray(features, np.float32).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def source_from_file(path: Path, encoder: IdentityEncoder, sface: SFaceEncoder) -> Source:
    """A's mean embedding and feature from a photo (its one face) or a video (the person seen most often in
    SOURCE_FRAMES frames: every face there is embedded and clustered by dlib, so a second person in the clip
    does not blur A; SFace's features of the same faces are averaged)."""
    path = require_file(path)
    if media_kind(path) == MediaKind.IMAGE:
        pictures = [read_image(path)]
    else:
        total = video_stream(path).frames or SOURCE_FRAMES
        wanted = set(np.linspace(0, max(0, total - 1), SOURCE_FRAMES).round().astype(int).tolist())
        pictures = [frame.image for frame in read_video(path) if frame.index in wanted]
    embeddings, features = [], []
    with Landmarker() as landmarker:
        for picture in pictures:
            faces = _main_faces(landmarker.detect(picture))
            if len(faces) > 1 and len(pictures) == 1:
                raise InputError(f"the photo of person A shows {len(faces)} faces: which one is A is not known",
                                 path=path, fix="crop the photo to A's face, or give the name of A's faceset")
            embeddings.extend(encoder.embed(picture, face.box) for face in faces)
            features.extend(sface.embed(picture, face.points68()) for face in faces)
    if not embeddings:
        raise NoFaceError("no face found to describe person A", path=path, fix="give a photo or video where A's "
                          "face is visible, or the name of A's faceset")
    embeddings = np.stack(embeddings)
    mine = largest_cluster(cluster(embeddings))
    return Source(centroid(embeddings[mine]), mean_feature(np.stack(features)[mine]),
                  f"{path.name} ({int(mine.sum())} of {len(embeddings)} faces)")


def _main_faces(faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
    """The faces of a picture at least a quarter the area of its largest: a face far behind is no one's subject."""
    largest = max(map(face_area, faces), default=0.0)
    return [f for f in faces if face_area(f) >= 0.25 * largest]


def face_area(face: FaceLandmarks) -> float:
    return float((face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))
