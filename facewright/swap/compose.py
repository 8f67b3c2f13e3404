"""One frame's swap: crop each chosen face, render it as person A, match its color, mask it, blend it back.

Per face: the crop is aligned exactly as the model's training faces were (same face type, resolution);
the model gives A's face and a mask; the mask is combined with the landmark hull (default: their
intersection, which keeps a hand in front of the face where the model saw it), eroded and feathered in
fractions of the face's size; the color is moved toward the original face (one map per track by
default); the face may be scaled and sharpened; then it is warped back with the inverse transform, its own
contrast raised where a soft model draws faintly (--restore), given the original face's fine detail
(--detail) and, in a video, its blinks and lip movements (--motion; all three swap.detail), and blended
(alpha or Poisson) inside the face's footprint only.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from facewright.config import SwapOptions
from facewright.faces.align import alignment_matrix, transform_points
from facewright.faces.mask import face_size, hull_mask
from facewright.faces.types import Points
from facewright.media.image import Frame
from facewright.swap import blend as _blend
from facewright.swap.color import ColorMap, fit_color, masked_pixels, transfer
from facewright.swap.detail import MotionTransfer, restore_contrast, transfer_detail
from facewright.swap.footage import FaceTrack
from facewright.swap.model import SwapModel
from facewright.swap.occlusion import Occlusion, crop_keep

SHARPEN_RADIUS = 1 / 128  # of the crop size: the detail scale the model blurs most


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The model's work on a batch of faces, in crop coordinates: all that compositing needs of it."""

    matrices: list[np.ndarray]  # per face, 2 x 3 float64: frame pixels -> crop pixels
    faces: np.ndarray  # N x S x S x 3 float32 RGB in [0, 1], before color transfer
    masks: np.ndarray  # N x S x S float32 in [0, 1], the model's predicted masks

    def __len__(self) -> int:
        return len(self.matrices)

    def part(self, start: int, stop: int) -> Rendered:
        return Rendered(self.matrices[start:stop], self.faces[start:stop], self.masks[start:stop])

    @staticmethod
    def join(parts: Sequence[Rendered], size: int) -> Rendered:
        """The parts' faces one after another (none: an empty Rendered of S = `size`)."""
        if not parts:
            return Rendered([], np.zeros((0, size, size, 3), np.float32), np.zeros((0, size, size), np.float32))
        return Rendered([m for p in parts for m in p.matrices], np.concatenate([p.faces for p in parts]),
                        np.concatenate([p.masks for p in parts]))


FaceJob = tuple[int, int, Points]  # (frame position in the batch, track id, 68 points in frame pixels)


def face_jobs(faces: Sequence[Sequence[tuple[int, Points]]]) -> list[FaceJob]:
    """The faces of a batch of frames ([(track, points)] per frame), one job each, in frame order."""
    return [(i, track, points) for i, frame_faces in enumerate(faces) for track, points in frame_faces]


def aligned_crops(images: Sequence[Frame], jobs: Sequence[FaceJob], matrices: Sequence[np.ndarray],
                  size: int) -> np.ndarray:
    """N x size x size x 3 uint8: each job's face cut out of its frame as the model sees it."""
    return np.stack([cv2.warpAffine(images[job[0]], m, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT) for job, m in zip(jobs, matrices, strict=True)])


class FaceCompositor:
    """Composites faces already rendered (`Rendered`) into their frames: mask, color, occlusion, detail,
    blend. Needs no model: `facewright composite` runs it on faces another process rendered (swap.composite)."""

    def __init__(self, options: SwapOptions, face_type: str, colors: dict[int, ColorMap] | None = None,
                 occlusion: Occlusion | None = None):
        self.occlusion = occlusion or Occlusion()
        if options.mask == "auto":  # swap.run resolves it; here for callers that build a Compositor themselves
            options = dataclasses.replace(options, mask="occlusion" if self.occlusion.model else "intersect")
        self.options, self.face_type, self.colors = options, face_type, colors or {}
        self.motion = MotionTransfer(options.motion, options.detail_scale)  # per track: keep one compositor a video
        self.timer = self.occlusion.timer  # seconds per stage: align, model, hands, mask model, mask, color, blend
        # Called with (frame position in the batch, track, face, mask, frame->crop matrix) before blending.
        self.on_face: Callable[[int, int, np.ndarray, np.ndarray, np.ndarray], None] | None = None

    def composite(self, images: Sequence[Frame], jobs: Sequence[FaceJob], rendered: Rendered,
                  times: Sequence[float | None] | None = None, crops: np.ndarray | None = None) -> list[Frame]:
        """`images` with the rendered face of every job composited in (new frames; the inputs are kept).
        `times`: the frames' times in seconds (a video's: the hand model tracks hands through them);
        `crops`: the jobs' aligned crops when the caller has them (else cut again, identically)."""
        out = list(images)
        if not jobs:
            return out
        if crops is None:
            crops = aligned_crops(images, jobs, rendered.matrices, rendered.faces.shape[1])
        self.occlusion.prepare(images, times or [None] * len(images), jobs)
        for j, (job, matrix, crop, face, mask) in enumerate(zip(jobs, rendered.matrices, crops, rendered.faces,
                                                                rendered.masks, strict=True)):
            out[job[0]] = self._composite(j, job, matrix, crop, face, mask, out[job[0]], images[job[0]],
                                          None if times is None else times[job[0]])
        return out

    def _composite(self, j: int, job: FaceJob, matrix: np.ndarray, crop: np.ndarray,
                   face: np.ndarray, mask: np.ndarray, frame: Frame, original: Frame, time: float | None) -> Frame:
        """Face `j` of the batch post-processed, warped into its frame, cut where something is in front of
        it (in the frame's pixels: an occluder keeps its own edges), its contrast restored (--restore), given the
        `original` frame's fine detail (--detail) and motion (--motion; `time`: the frame's, None for a still
        image), and blended into `frame`."""
        i, track, points = job
        face, mask = self._post(track, transform_points(points, matrix), crop, face, mask)
        with self.timer("blend"):
            warped = _blend.warp_to_frame(face, mask, matrix, frame.shape)
        with self.timer("mask"):
            keep = self.occlusion.keep(j, i, warped.box, points, self.face_type, self.options.blur)
            if keep is not None:
                warped = dataclasses.replace(warped, mask=warped.mask * (1 - keep))
        options = self.options
        if (options.detail > 0 or options.restore > 0 or options.motion > 0) and not warped.empty:
            with self.timer("detail"):
                region, local = original[warped.region] / np.float32(255), points - warped.box[:2]  # once for all 3
                face_in_frame = restore_contrast(warped.face, region, local, options.restore, options.detail_scale)
                face_in_frame = transfer_detail(face_in_frame, region, local, options.detail, options.detail_scale,
                                                options.detail_features)
                to_crop = matrix @ np.array([[1, 0, warped.box[0]], [0, 1, warped.box[1]], [0, 0, 1]], np.float64)
                face_in_frame = self.motion(track, time, face_in_frame, region, local, to_crop, mask.shape[0])
                warped = dataclasses.replace(warped, face=face_in_frame)
        if self.on_face is not None:
            cut = mask if keep is None else mask * (1 - crop_keep(keep, warped.box, matrix, mask.shape[0]))
            self.on_face(i, track, face, cut, matrix)
        with self.timer("blend"):
            return _blend.paste_face(frame, warped, self.options.blend)

    def _post(self, track: int, points: Points, crop: np.ndarray, face: np.ndarray,
              predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask, color, scale and sharpen one rendered face (crop coordinates)."""
        options, size = self.options, face.shape[0]
        with self.timer("mask"):
            hull = hull_mask(face.shape[:2], points, self.face_type)
            mask = _blend.combine_masks(predicted, hull, options.mask)
            mask = _blend.refine_mask(mask, face_size(points), erode=options.erode, blur=options.blur)
        with self.timer("color"):
            face = self._color(track, face, crop, mask)
        if options.face_scale != 1.0:
            face, mask = _blend.scale_crop(face, mask, options.face_scale)
        if options.sharpen > 0:
            face = _blend.sharpen(face, options.sharpen, max(1.0, size * SHARPEN_RADIUS))
        return face, mask

    def _color(self, track: int, face: np.ndarray, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mode = self.options.color
        if mode == "none":
            return face
        fitted = self.colors.get(track)
        if fitted is not None:
            return fitted.apply(face)
        return transfer(face, crop.astype(np.float32) / 255, mask, mode)


class Compositor(FaceCompositor):
    """Call with a frame and its faces to swap [(track id, 68 points)]; returns a new frame. Renders each
    face with the model, then composites it (FaceCompositor)."""

    def __init__(self, model: SwapModel, options: SwapOptions, colors: dict[int, ColorMap] | None = None,
                 occlusion: Occlusion | None = None):
        super().__init__(options, model.face_type, colors, occlusion)
        self.model = model

    def __call__(self, image: Frame, faces: Sequence[tuple[int, Points]]) -> Frame:
        return self.many([image], [faces])[0]

    def many(self, images: Sequence[Frame], faces: Sequence[Sequence[tuple[int, Points]]],
             times: Sequence[float | None] | None = None) -> list[Frame]:
        """Swap the faces of several frames, the model seeing all their faces in batches of `--batch`.
        `times`: the frames' times in seconds (a video's: the hand model tracks hands through them)."""
        jobs = face_jobs(faces)
        if not jobs:
            return list(images)
        rendered, crops = self.render(images, jobs)
        return self.composite(images, jobs, rendered, times, crops)

    def render(self, images: Sequence[Frame], jobs: Sequence[FaceJob]) -> tuple[Rendered, np.ndarray]:
        """The model's faces and masks for `jobs` (at least one), and the aligned crops it was given."""
        size = self.model.resolution
        with self.timer("align"):
            matrices = [alignment_matrix(points, size, self.model.face_type) for _, _, points in jobs]
            crops = aligned_crops(images, jobs, matrices, size)
        with self.timer("model"):
            step = self.options.batch
            parts = [self.model.render(crops[i:i + step]) for i in range(0, len(crops), step)]
        return Rendered(matrices, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])), crops


class Prerendered(FaceCompositor):
    """A Compositor whose model ran elsewhere (a GPU task of its own: swap.chunks): `many` composites the next
    faces of `rendered`, which holds the faces of the same frames in the order `Compositor.render` gave them."""

    def __init__(self, rendered: Rendered, options: SwapOptions, face_type: str,
                 colors: dict[int, ColorMap] | None = None, occlusion: Occlusion | None = None):
        super().__init__(options, face_type, colors, occlusion)
        self.rendered, self.used = rendered, 0

    def many(self, images: Sequence[Frame], faces: Sequence[Sequence[tuple[int, Points]]],
             times: Sequence[float | None] | None = None) -> list[Frame]:
        jobs = face_jobs(faces)
        if not jobs:
            return list(images)
        if self.used + len(jobs) > len(self.rendered):
            raise ValueError(f"{len(self.rendered)} rendered faces, and more asked for ({self.used + len(jobs)})")
        part = self.rendered.part(self.used, self.used + len(jobs))
        self.used += len(jobs)
        return self.composite(images, jobs, part, times)


def fit_track_colors(model: SwapModel, tracks: Sequence[FaceTrack], options: SwapOptions) -> dict[int, ColorMap]:
    """One color map per track, fitted on the pooled masked pixels of its sample crops (steady over time)."""
    if options.color == "none" or options.color_stats != "track":
        return {}
    maps = {}
    for track in tracks:
        if not track.samples:
            continue
        crops = np.stack(track.samples)
        rendered, predicted = model.render(crops)
        masks = [np.minimum(p, (p > 0.5).astype(np.float32)) for p in predicted]
        source = np.concatenate([masked_pixels(face, m, seed=i) for i, (face, m) in enumerate(zip(rendered, masks,
                                                                                                     strict=True))])
        reference = np.concatenate([masked_pixels(c.astype(np.float32) / 255, m, seed=i)
                                    for i, (c, m) in enumerate(zip(crops, masks, strict=True))])
        maps[track.id] = fit_color(options.color, source, reference)
    return maps
