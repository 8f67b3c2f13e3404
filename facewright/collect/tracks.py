"""Per-frame face geometry of a video to be swapped, stored once so the swap does not detect twice.

Each track (one person's face through consecutive frames) becomes a compact .npz of arrays, referenced
from the catalog's `tracks` table: frame indices, pts, boxes, 478 landmarks, 4 x 4 pose, and a few
identity embeddings (for picking which track to swap by identity).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from facewright.collect.catalog import record_track, track_files
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import FaceLandmarks
from facewright.files import atomic_path, private_dir
from facewright.media.kind import MediaKind
from facewright.media.video import MediaInfo, VideoFrame
from facewright.workspace import Workspace

EMBED_EVERY = 30  # frames between identity samples of a track: identity does not change within a track


class TrackRecorder:
    """Collects every frame's faces by track id; `save` writes one .npz per track and its catalog row."""

    def __init__(self, encoder: IdentityEncoder):
        self.encoder = encoder
        self.tracks: dict[int, dict[str, list]] = {}

    def add(self, frame: VideoFrame, faces: list[FaceLandmarks], track_ids: list[int]) -> None:
        for face, track in zip(faces, track_ids, strict=True):
            arrays = self.tracks.setdefault(track, {k: [] for k in ("frames", "pts", "boxes", "landmarks", "pose",
                                                                      "embedding_frames", "embeddings")})
            if len(arrays["frames"]) % EMBED_EVERY == 0:
                arrays["embedding_frames"].append(frame.index)
                arrays["embeddings"].append(self.encoder.embed(frame.image, face.box))
            arrays["frames"].append(frame.index)
            arrays["pts"].append(frame.pts)
            arrays["boxes"].append(face.box)
            arrays["landmarks"].append(face.points)
            arrays["pose"].append(face.pose)

    def save(self, ws: Workspace, info: MediaInfo, sha256: str) -> list[Path]:
        folder = private_dir(ws.root / "tracks" / sha256[:16], ws.root)  # landmarks and embeddings: biometric
        video = info.video
        media_id = ws.add_media(info.path, sha256, MediaKind.VIDEO, width=video.width, height=video.height,
                                frames=video.frames, fps=video.fps, duration=info.duration,
                                has_audio=int(info.audio is not None))
        paths = []
        for track, arrays in sorted(self.tracks.items()):
            path = folder / f"track_{track:03d}.npz"
            _save_npz(path, {k: np.asarray(v) for k, v in arrays.items()})
            record_track(ws, media_id, track, arrays["frames"], path)
            paths.append(path)
        return paths


def load_track(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def stored_faces(ws: Workspace, video_sha256: str) -> dict[int, list[FaceLandmarks]]:
    """frame index -> faces, from the tracks an earlier `extract --for-swap` stored for this video ({}: none)."""
    faces: dict[int, list[FaceLandmarks]] = {}
    for path in track_files(ws, video_sha256):
        arrays = load_track(path)
        for index, points, pose in zip(arrays["frames"], arrays["landmarks"], arrays["pose"], strict=True):
            faces.setdefault(int(index), []).append(FaceLandmarks(points, np.zeros(0, np.float32), (), pose))
    return faces


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, private=True) as tmp:  # its name ends in .npz, so numpy does not append another
        np.savez_compressed(tmp, **arrays)
