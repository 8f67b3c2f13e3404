"""Face records: what extraction learns about one face, and how it is stored in the catalog."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from facewright.collect.quality import Quality


@dataclass
class FaceRecord:
    """One face in one frame (or photo). Arrays: box (4,) landmarks (478 x 3) matrix (2 x 3), all float."""

    frame_index: int
    pts: int | None
    time: float | None
    face_index: int
    box: NDArray[np.float32] = field(repr=False)
    landmarks: NDArray[np.float32] = field(repr=False)
    matrix: NDArray[np.float64] = field(repr=False)
    quality: Quality
    blendshapes: NDArray[np.float32] = field(repr=False)
    crop_hash: int
    reason: str | None = None  # None: kept
    embedding: NDArray[np.float32] | None = field(default=None, repr=False)
    crop_path: str | None = None
    mask_path: str | None = None
    track: int | None = None
    crop_sha256: str | None = None  # of the crop file as written


def signed64(value: int) -> int:
    """SQLite integers are signed 64-bit: store an unsigned 64-bit hash in two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def blob(array: NDArray | None) -> bytes | None:
    return None if array is None else np.ascontiguousarray(array).tobytes()


def from_blob(data: bytes | None, dtype: type, shape: tuple[int, ...]) -> NDArray | None:
    return None if data is None else np.frombuffer(data, dtype).reshape(shape)


def insert_faces(conn: sqlite3.Connection, faceset_id: int, media_id: int, records: list[FaceRecord],
                 created_at: str) -> None:
    """Insert (or replace, on a re-run of an interrupted source) the records of one source."""
    rows = [(faceset_id, media_id, r.frame_index, r.pts, r.time, r.face_index, r.track,
             "rejected" if r.reason else "kept", r.reason, r.crop_path, r.mask_path,
             blob(r.box.astype(np.float32)), blob(r.landmarks.astype(np.float32)), blob(r.matrix.astype(np.float64)),
             r.quality.yaw, r.quality.pitch, r.quality.roll, r.quality.face_width, r.quality.sharpness,
             r.quality.eyes_closed, r.quality.mouth_open, blob(r.blendshapes.astype(np.float32)),
             blob(None if r.embedding is None else r.embedding.astype(np.float32)), signed64(r.crop_hash), created_at,
             r.crop_sha256)
            for r in records]
    conn.executemany(
        "INSERT OR REPLACE INTO faces (faceset_id, media_id, frame_index, pts, time, face_index, track, status, "
        "reason, crop_path, mask_path, box, landmarks, matrix, yaw, pitch, roll, face_width, sharpness, "
        "eyes_closed, mouth_open, blendshapes, embedding, crop_hash, created_at, crop_sha256) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
