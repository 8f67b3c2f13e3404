"""Is this face the person in the consent photo? SFace first, dlib to break a tie.

Two independent recognizers: OpenCV's SFace (~16 ms a face) judges first; a face it does not match is
given to dlib's ResNet (~100 ms), which extraction and the consent photos use. A face passes when either
says it is the consenting person. On the sample clips SFace puts the consenting woman, hands over her face
included, at 0.47 or more against her consent photo (dlib: up to 0.68, past its 0.6), and the other person
at 0.21 or less. The swap (per frame) and training (a sample of each faceset's crops) both ask here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facewright.faces.identity import THRESHOLD, IdentityEncoder, distance
from facewright.faces.landmarks import Landmarker
from facewright.faces.sface import SAME_PERSON, SFaceEncoder
from facewright.media.image import Frame, read_image
from facewright.provenance.consent import ConsentRecord
from facewright.workspace import Workspace


@dataclass(frozen=True)
class Reference:
    """The consenting person as the checks know them: their consent photos' SFace features and dlib
    embeddings (K x 128 each, one row per photo; a face matching any photo passes)."""

    features: NDArray[np.float32]
    embeddings: NDArray[np.float32]
    threshold: float = THRESHOLD  # dlib distance of the tie-break


@dataclass(frozen=True)
class Check:
    frame: int
    similarity: float  # SFace cosine similarity to the nearest consent photo
    distance: float | None  # dlib distance, taken only when SFace alone did not pass
    judgeable: bool  # frontal, sharp, eyes open: a failure here is evidence of another person
    threshold: float = THRESHOLD

    @property
    def passed(self) -> bool:
        return self.similarity >= SAME_PERSON or (self.distance is not None and self.distance <= self.threshold)


def consent_reference(ws: Workspace, consents: list[ConsentRecord], sface: SFaceEncoder,
                      threshold: float = THRESHOLD) -> Reference:
    """The Reference of consents (checked ones: enforce.verified_consents): their photos' SFace features and
    recorded dlib embeddings. A photo where the landmark model finds no face gives SFace nothing to compare
    with: faces are then judged by dlib against it."""
    if not consents:
        raise ValueError("no consent to compare faces with")
    features = []
    with Landmarker(video=False) as landmarker:
        for consent in consents:
            photo = read_image(ws.root / consent.photo)
            faces = landmarker.detect(photo)
            largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)
            features.append(sface.embed(photo, largest.points68()) if largest else np.zeros(128, np.float32))
    return Reference(np.stack(features), np.stack([c.embedding for c in consents]), threshold)


def judge(reference: Reference, sface: SFaceEncoder, dlib: IdentityEncoder, frame: int, crop: NDArray[np.uint8],
          patch: Frame, box: Sequence[float], judgeable: bool = True) -> Check:
    """Check one face: `crop` is it aligned for SFace (faces.sface.align), `patch` an image holding it at
    `box` for dlib's tie-break. `judgeable`: whether a failure is evidence (a frontal, sharp face)."""
    feature = sface.embed_crops([crop])[0]
    similarity = float((reference.features @ feature).max())
    dlib_distance = None
    if similarity < SAME_PERSON:  # the tie-break: dlib, slower and independent of SFace
        dlib_distance = float(np.min(distance(reference.embeddings, dlib.embed(patch, box))))
    return Check(frame, similarity, dlib_distance, judgeable, reference.threshold)
