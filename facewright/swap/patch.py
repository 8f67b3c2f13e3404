"""`--patch`: the swapped faces as material for compositing in an editor (Nuke, Resolve, After Effects).

Per swapped track, in the patch folder:
- `track_NNN.mp4`: the rendered, color-matched faces, aligned (model resolution, square), one frame per
  input frame where the track is present, with the input's timestamps; labelled, watermarked and signed
  like every output, since they are swapped faces;
- `track_NNN_mask.mp4`: the blend masks as grayscale video, x264 crf 0 (yuv420p limited range: within one
  level of the float mask, not bit-exact), same frames;
- `track_NNN.json`: per frame its index, pts and the 2 x 3 matrix mapping frame pixels to crop pixels
  (invert it to place the face: `cv2.warpAffine(face, cv2.invertAffineTransform(m), (W, H))`).
Nothing appears in the folder until the swap has finished.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from facewright.config import VideoOptions
from facewright.files import atomic_path, temp_folder
from facewright.media.kind import MediaKind
from facewright.media.video import VideoFrame
from facewright.media.writer import VideoWriter
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.mark import FrameMarker, MarkPlan, MarkResult, seal

LOSSLESS = VideoOptions(crf=0, preset="veryfast")  # lossless YUV; the RGB round trip costs +-1 level


class PatchWriter:
    """Collects (frame, track, face, mask, matrix) and writes the patch folder on `finish`."""

    def __init__(self, folder: Path, fps: Fraction | float, time_base: Fraction | None, video: VideoOptions,
                 plan: Callable[[], MarkPlan], signer: SigningIdentity):
        self.folder, self.fps, self.time_base, self.video = folder, fps, time_base, video
        self.plan, self.signer = plan, signer
        self._tmp = temp_folder(folder.parent, "patch")
        self._tracks: dict[int, tuple[VideoWriter, VideoWriter, FrameMarker, list[dict]]] = {}

    def add(self, frame: VideoFrame, track: int, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> None:
        faces, masks, marker, meta = self._tracks.get(track) or self._open(track, face.shape[0])
        faces.write(marker(_u8(face)), frame.pts)
        masks.write(np.repeat(_u8(mask)[..., None], 3, axis=2), frame.pts)
        meta.append({"frame": frame.index, "pts": frame.pts, "matrix": np.asarray(matrix).round(6).tolist()})

    def _open(self, track: int, size: int):
        stem = Path(self._tmp.name) / f"track_{track:03d}"
        writers = [VideoWriter(stem.with_name(stem.name + suffix), width=size, height=size, fps=self.fps,
                               time_base=self.time_base, options=options)
                   for suffix, options in ((".mp4", self.video), ("_mask.mp4", LOSSLESS))]
        entry = self._tracks[track] = (*writers, FrameMarker(self.plan(), MediaKind.VIDEO), [])
        return entry

    def finish(self) -> list[tuple[MarkResult, MarkPlan]]:
        """Close every track, sign the face videos, move everything into the folder; the marks to record."""
        marks = []
        self.folder.mkdir(parents=True, exist_ok=True)
        for track in sorted(self._tracks):
            faces, masks, marker, meta = self._tracks.pop(track)
            output = self.folder / f"track_{track:03d}.mp4"
            seal(faces.close(), output, marker.plan, self.signer)
            shutil.move(masks.close(), self.folder / f"track_{track:03d}_mask.mp4")
            with atomic_path(self.folder / f"track_{track:03d}.json") as tmp:
                tmp.write_text(json.dumps({"track": track, "frames": meta}, indent=1) + "\n")
            marks.append((MarkResult.of(output, marker.plan, MediaKind.VIDEO, len(meta), marker), marker.plan))
        self.close()
        return marks

    def close(self) -> None:
        """Drop whatever is unfinished (an interrupted swap leaves no partial patch)."""
        for faces, masks, _, _ in self._tracks.values():
            faces.abort()
            masks.abort()
        self._tracks.clear()
        self._tmp.cleanup()


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
