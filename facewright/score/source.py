"""Person A as the score knows them: one mean identity embedding, from a faceset, a photo or a video."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewright.errors import InputError, NoFaceError
from facewright.faces.identity import Embedding, IdentityEncoder, centroid, cluster, largest_cluster
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.files import require_file
from facewright.media.image import read_image
from facewright.media.kind import MediaKind, media_kind
from facewright.media.video import read_video
from facewright.score.frames import video_stream

SOURCE_FRAMES = 16  # frames of a source video embedded for A's identity


@dataclass(frozen=True)
class Source:
    """Person A as the score knows them: a mean embedding and where it came from."""

    embedding: Embedding
    description: str


def source_from_embeddings(embeddings: np.ndarray, description: str) -> Source:
    if len(embeddings) == 0:
        raise NoFaceError(f"{description}: no face embeddings to describe person A",
                          fix="give a faceset with kept faces, or a photo or video of A")
    return Source(centroid(embeddings), f"{description} ({len(embeddings)} faces)")


def source_from_file(path: Path, encoder: IdentityEncoder) -> Source:
    """A's mean embedding from a photo (its one face) or a video (the person seen most often in SOURCE_FRAMES
    frames: every face there is embedded and clustered, so a second person in the clip does not blur A)."""
    path = require_file(path)
    if media_kind(path) == MediaKind.IMAGE:
        pictures = [read_image(path)]
    else:
        total = video_stream(path).frames or SOURCE_FRAMES
        wanted = set(np.linspace(0, max(0, total - 1), SOURCE_FRAMES).round().astype(int).tolist())
        pictures = [frame.image for frame in read_video(path) if frame.index in wanted]
    embeddings = []
    with Landmarker() as landmarker:
        for picture in pictures:
            faces = _main_faces(landmarker.detect(picture))
            if len(faces) > 1 and len(pictures) == 1:
                raise InputError(f"the photo of person A shows {len(faces)} faces: which one is A is not known",
                                 path=path, fix="crop the photo to A's face, or give the name of A's faceset")
            embeddings.extend(encoder.embed(picture, face.box) for face in faces)
    if not embeddings:
        raise NoFaceError("no face found to describe person A", path=path, fix="give a photo or video where A's "
                          "face is visible, or the name of A's faceset")
    embeddings = np.stack(embeddings)
    mine = largest_cluster(cluster(embeddings))
    return Source(centroid(embeddings[mine]), f"{path.name} ({int(mine.sum())} of {len(embeddings)} faces)")


def _main_faces(faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
    """The faces of a picture at least a quarter the area of its largest: a face far behind is no one's subject."""
    largest = max(map(face_area, faces), default=0.0)
    return [f for f in faces if face_area(f) >= 0.25 * largest]


def face_area(face: FaceLandmarks) -> float:
    return float((face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))
