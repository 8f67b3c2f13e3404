"""OpenCV's SFace recognizer: a second identity model, independent of dlib's, light enough for every few frames.

dlib's ResNet (faces/identity.py) picks faces and records consent photos; SFace checks the swap's faces
frame by frame (and gives `score` a judge that did not choose the faces). A face is aligned by five points
(eye centres, nose tip, mouth corners, taken from the 68 landmarks) onto SFace's 112 x 112 template, and
its 128-d feature compared by cosine similarity. About 16 ms a face on 2 CPU cores.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.assets import asset_path
from facewright.errors import AssetError
from facewright.faces.align import umeyama
from facewright.faces.types import Points
from facewright.media.image import Frame

MODEL = "face_recognition_sface_2021dec_int8bq.onnx"
SAME_PERSON = 0.363  # cosine similarity from which two faces are one person (OpenCV's threshold for SFace, LFW)
Feature = NDArray[np.float32]  # (128,), unit length
SIZE = 112
# Where the eyes (image left first), nose tip and mouth corners lie in SFace's (ArcFace's) 112 x 112 crop.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                     [70.7299, 92.2041]], np.float32)


class SFaceEncoder:
    """Image + 68 landmarks in, a unit-length 128-d feature out."""

    def __init__(self, model: str | Path | None = None):
        path = Path(model or asset_path(MODEL))
        try:  # cv2.FaceRecognizerSF cannot feed this file (its weights are graph inputs): the net is run here
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise AssetError(f"cannot load the SFace model: {exc}", path=path,
                             fix="fetch it again: facewright assets fetch --force " + MODEL) from exc

    def embed(self, image: Frame, points: Points) -> Feature:
        """The feature of the face whose 68 landmarks (frame pixels) are `points`, in `image` (H x W x 3 RGB)."""
        return self.embed_crops([align(image, points)])[0]

    def embed_crops(self, crops: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """N x 128 unit features of aligned 112 x 112 RGB crops (see `align`), in one call of the network."""
        self._net.setInput(cv2.dnn.blobFromImages(crops, 1.0, (SIZE, SIZE), (0, 0, 0), False, False), "data")
        features = self._net.forward().reshape(len(crops), -1).astype(np.float32)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def align(image: Frame, points: Points) -> NDArray[np.uint8]:
    """The face as SFace was trained to see it: a similarity transform of five points (eye centres, nose tip,
    mouth corners) onto its 112 x 112 template."""
    points = np.asarray(points, np.float32)
    five = np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])
    return cv2.warpAffine(image, umeyama(five, TEMPLATE), (SIZE, SIZE), flags=cv2.INTER_LINEAR)


def similarity(a: Feature, b: Feature) -> float:
    """Cosine similarity of two unit features: 1 the same picture, >= SAME_PERSON one person."""
    return float(np.dot(a, b))
