"""The per-face work of extraction that needs the pixels: align, score, embed, encode the files.

It needs no workspace, so it runs in the driver or in a chunk's worker (collect/chunks.py); what depends on
the faces before (de-duplication) or on the workspace (writing, the catalog) is `extract.FaceProcessor`'s.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from facewright.collect.quality import Quality, crop_hash, reject_reason, sharpness
from facewright.collect.records import FaceRecord
from facewright.collect.tracks import EMBED_EVERY
from facewright.config import ExtractOptions
from facewright.faces.align import AlignedFace, align_face, transform_points
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import FaceLandmarks
from facewright.faces.mask import hull_mask
from facewright.media.image import Frame, encode_image
from facewright.media.video import VideoFrame
from facewright.prefetch import close_source, decoded_ahead
from facewright.timing import Timer

STAGES = ("decode", "landmarks", "align", "score", "identity", "write")


@dataclass
class MeasuredFace:
    """A face aligned and scored; `files` are its crop and mask encoded ahead (by a chunk's worker, which
    has the pixels; the driver then only writes them)."""

    record: FaceRecord
    points68: np.ndarray  # 68 x 2 frame pixels
    aligned: AlignedFace | None = None  # None once encoded
    files: tuple[bytes, bytes] | None = None


class FaceMeasurer:
    """The per-face work on pixels: align, score, identity embedding, encoding. No workspace: it runs in the
    driver or in a worker."""

    def __init__(self, options: ExtractOptions, encoder: IdentityEncoder, timer: Timer):
        self.options, self.encoder, self.timer = options, encoder, timer
        self._track_identity: dict[tuple[str, int], tuple[int, np.ndarray]] = {}

    def measure(self, image: Frame, face: FaceLandmarks, frame: int, index: int, pts: int | None = None,
                at: float | None = None, track: int | None = None) -> MeasuredFace:
        with self.timer("align"):
            points68 = face.points68()
            aligned = align_face(image, points68, size=self.options.size, face_type=self.options.face_type)
        with self.timer("score"):
            quality = _quality(face, aligned.image)
            record = FaceRecord(frame, pts, at, index, face.box, face.points, aligned.matrix, quality,
                                face.blendshapes, crop_hash(aligned.image), reject_reason(quality, self.options),
                                track=track)
        return MeasuredFace(record, points68, aligned)

    def embedding(self, image: Frame, record: FaceRecord, stem: str) -> np.ndarray:
        """A face's identity embedding. Within a video track the person does not change, so the track's
        embedding is reused for EMBED_EVERY frames: dlib's ResNet (~100 ms) would otherwise dominate."""
        with self.timer("identity"):
            if record.track is None:
                return self.encoder.embed(image, record.box)
            key = (stem, record.track)
            cached = self._track_identity.get(key)
            if cached is None or record.frame_index - cached[0] >= EMBED_EVERY:
                cached = (record.frame_index, self.encoder.embed(image, record.box))
                self._track_identity[key] = cached
            return cached[1]

    def encode(self, face: MeasuredFace) -> tuple[bytes, bytes]:
        """The crop (in --image-format) and its hull mask (PNG) as file bytes."""
        with self.timer("write"):
            size, aligned = self.options.size, face.aligned
            crop = encode_image(aligned.image, f"crop.{self.suffix}", quality=self.options.jpeg_quality)
            crop_points = transform_points(face.points68, aligned.matrix)
            mask = hull_mask((size, size), crop_points, face_type=self.options.face_type)
            mask_rgb = np.repeat((np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
            return crop, encode_image(mask_rgb, "mask.png")

    @property
    def suffix(self) -> str:
        return "jpg" if self.options.image_format == "jpg" else "png"


def _quality(face: FaceLandmarks, crop: Frame) -> Quality:
    yaw, pitch, roll = face.yaw_pitch_roll
    box = face.box
    return Quality(face_width=float(box[2] - box[0]), sharpness=sharpness(crop), yaw=yaw, pitch=pitch, roll=roll,
                   eyes_closed=face.eyes_closed, mouth_open=face.mouth_open)


def timed_decoding(frames: Iterable[VideoFrame], timer: Timer) -> Iterator[VideoFrame]:
    """`frames` decoded in a thread of their own (`prefetch.decoded_ahead`), the time spent decoding each counted
    as the "decode" stage: extraction runs decoding, the landmark model (in the caller's `prefetch` thread) and
    the rest (in the caller's) at once. Close the caller's `prefetch` before the reader."""
    return decoded_ahead(timed_frames(frames, timer))


def timed_frames(frames: Iterable[VideoFrame], timer: Timer) -> Iterator[VideoFrame]:
    """`frames`, the time spent decoding each one counted as the "decode" stage."""
    frames = iter(frames)
    try:
        while True:
            with timer("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            yield frame
    finally:
        close_source(frames)  # a chunk's reader closes here, in the thread that decoded it
