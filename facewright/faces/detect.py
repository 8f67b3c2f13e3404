"""Face detectors, as a registry: `create_detector("blazeface")`.

- `blazeface`: MediaPipe BlazeFace short range, for faces within ~2 m (selfies, interviews); ~1 ms.
- `blazeface-full`: BlazeFace full range (sparse), for small and far faces in group photos.
- `dlib-hog`: dlib's HOG + linear SVM; slower, but finds frontal faces BlazeFace misses at odd scales.
All take RGB uint8 images of any size. BlazeFace sees its input at 128/192 px, so a large photo is also
searched in overlapping tiles (a face of 200 px in a 12000 x 8000 photo would vanish otherwise); past
MAX_SIDE the image is first downscaled (bounded memory and time). Boxes come back in input pixels.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.assets import asset_path
from facewright.errors import OptionError
from facewright.faces.boxes import box_containment
from facewright.faces.native import MediaPipeTask, QuietFirstCall, quiet_stderr
from facewright.faces.types import Detection
from facewright.media.image import Frame

# Faces of interest are tens to hundreds of pixels: past this side, downscale first.
MAX_SIDE = 4096
TILE = 768  # BlazeFace tiles: a face of ~40 px in a tile is still ~10 px in the 192 px model input
NMS_OVERLAP = 0.5


class Detector(Protocol):
    def detect(self, image: Frame) -> list[Detection]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Detector: ...
    def __exit__(self, *exc: object) -> None: ...


_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    def add(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _REGISTRY[name] = factory
        return factory
    return add


def detector_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_detector(name: str, **options: object) -> Detector:
    if name not in _REGISTRY:
        raise OptionError(f"unknown detector {name!r}", fix=f"use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name](**options)


def downscale(image: Frame, max_side: int) -> tuple[Frame, float]:
    """Shrink so the longer side is at most max_side; return the image and the factor applied (<= 1)."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def nms(detections: list[Detection], overlap: float = NMS_OVERLAP) -> list[Detection]:
    """Keep the best-scoring of overlapping detections (one face seen by two tiles, or at two scales).

    Overlap is measured against the smaller box: duplicates from different scales differ in size, so their
    IoU can be low while one nearly contains the other.
    """
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if not kept or box_containment(det.box, np.stack([k.box for k in kept])).max() < overlap:
            kept.append(det)
    return kept


def tiles(height: int, width: int, tile: int = TILE) -> list[tuple[int, int, int, int]]:
    """Overlapping (x0, y0, x1, y1) windows covering the image, each tile x tile, overlap >= tile / 4."""
    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        count = math.ceil((size - tile) / (tile * 3 // 4)) + 1
        return [round(i * (size - tile) / (count - 1)) for i in range(count)]
    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in starts(height) for x in starts(width)]


def _cut_by_tile(box: NDArray, window: tuple[int, int, int, int], width: int, height: int, pad: int = 2) -> bool:
    """True if a tile-local box touches a tile edge inside the image: a cut face, which the overlapping
    tile (faces under a quarter tile) or the overview pass (larger faces) sees whole."""
    x0, y0, x1, y1 = window
    return bool((x0 > 0 and box[0] <= pad) or (y0 > 0 and box[1] <= pad)
                or (x1 < width and box[2] >= x1 - x0 - pad) or (y1 < height and box[3] >= y1 - y0 - pad))


def _shift(det: Detection, dx: float, dy: float, scale: float) -> Detection:
    offset = np.array([dx, dy], np.float32)
    keys = None if det.keypoints is None else (det.keypoints + offset) / scale
    return Detection((det.box + np.tile(offset, 2)) / scale, det.score, keys)


class BlazeFaceDetector(MediaPipeTask):
    """MediaPipe Tasks FaceDetector on one of the BlazeFace .tflite models. Keypoints (6): right eye, left eye,
    nose tip, mouth center, right ear tragion, left ear tragion (subject's right = image left)."""

    def __init__(self, model: Path, min_score: float = 0.5, max_side: int = MAX_SIDE):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                             min_detection_confidence=min_score)
        with quiet_stderr():
            self._task = vision.FaceDetector.create_from_options(options)
        self.max_side = max_side
        self._quiet = QuietFirstCall()

    def detect(self, image: Frame) -> list[Detection]:
        image, scale = downscale(image, self.max_side)
        height, width = image.shape[:2]
        overview, shrink = downscale(image, TILE)  # large faces, which tiles would cut
        found = [_shift(d, 0, 0, scale * shrink) for d in self._detect_once(overview)]
        if max(height, width) > TILE:
            for x0, y0, x1, y1 in tiles(height, width):
                inner = [d for d in self._detect_once(image[y0:y1, x0:x1])
                         if not _cut_by_tile(d.box, (x0, y0, x1, y1), width, height)]
                found += [_shift(d, x0, y0, scale) for d in inner]
        return nms(found)

    def _detect_once(self, image: Frame) -> list[Detection]:
        import mediapipe as mp

        result = self._quiet(self._task.detect, mp.Image(image_format=mp.ImageFormat.SRGB,
                                                          data=np.ascontiguousarray(image)))
        height, width = image.shape[:2]
        found = []
        for det in result.detections:
            b = det.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height], np.float32)
            keys = np.array([[k.x * width, k.y * height] for k in det.keypoints or []], np.float32).reshape(-1, 2)
            found.append(Detection(box, float(det.categories[0].score), keys if len(keys) else None))
        return found


@register_detector("blazeface")
def blazeface(min_score: float = 0.5, max_side: int = MAX_SIDE) -> BlazeFaceDetector:
    return BlazeFaceDetector(asset_path("face_detection_short_range.tflite"), min_score, max_side)


@register_detector("blazeface-full")
def blazeface_full(min_score: float = 0.5, max_side: int = MAX_SIDE) -> BlazeFaceDetector:
    return BlazeFaceDetector(asset_path("face_detection_full_range_sparse.tflite"), min_score, max_side)


class DlibHogDetector:
    """dlib's frontal HOG detector. `upsample` doubles the image that many times to find faces under ~80 px."""

    # dlib's own threshold is 0; its hits under ~0.4 are mostly texture (the astronaut's flag patch scores 0.12).
    def __init__(self, upsample: int = 1, min_score: float = 0.4, max_side: int = 1600):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample, self.min_score, self.max_side = upsample, min_score, max_side

    def detect(self, image: Frame) -> list[Detection]:
        small, scale = downscale(image, self.max_side)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, self.min_score)
        return [Detection(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale, float(s))
                for r, s in zip(rects, scores, strict=True)]

    def close(self) -> None:
        pass

    def __enter__(self) -> DlibHogDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@register_detector("dlib-hog")
def dlib_hog(upsample: int = 1, min_score: float = 0.4, max_side: int = 1600) -> DlibHogDetector:
    return DlibHogDetector(upsample, min_score, max_side)
