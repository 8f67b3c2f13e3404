"""`facewright score`: how good a swap is, frame by frame, measured against the footage it was made from.

Each output frame is paired with the input frame it was made from (frames.py). The face scored is the input's face
whose region the output changed most; when no face changed beyond what marking does, the largest face is
scored as it is (an unswapped frame then counts against identity, as it should). Per frame:
- identity, by two recognizers on up to `samples` frames spread over the clip: SFace (the judge the headline
  reports: it did not choose the faces, dlib did, when the faceset was extracted and consent checked), the
  output face's cosine similarity to A's mean feature and to the input's face, both aligned by the input's
  landmarks (~35 ms a frame); and dlib's L2 distances the same way (~0.27 s a frame on 2 CPU cores);
- expression: blendshape correlation, mouth-open and eyes-closed agreement; pose: yaw/pitch/roll error;
- temporal stability: frame-to-frame change inside the face region, output against input (flicker);
- seams: delta E across the border of the region the swap changed, output minus input (the input's own
  contrast there, a jaw line against a neck, is not the swap's fault);
- background: change outside every face's head region, the visible label's corner box left out;
- hands (every frame: hands move fast): the share of the hand pixels in front of the scored face that the
  output repainted. Hands are found on the input frame (MediaPipe, tracked, inside a box around the faces:
  ~20 ms a frame); "in front of the face" is the input face's hull grown by FACE_REACH, the region a swap
  paints. The swapped region, found from the pixels, would not do: a swap that keeps the hand leaves it
  out, so the hand would never be counted. Only the hand's core counts (its drawn region less HAND_EDGE),
  so the face skin beside a finger, which a swap rightly repaints, is not taken for the hand.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from facewright.errors import NoFaceError
from facewright.faces.hands import Hand, HandTracker, around_faces, hand_mask
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.faces.mask import face_size, hull_mask
from facewright.faces.sface import SFaceEncoder, align
from facewright.faces.types import Mask, Points
from facewright.media.image import Frame
from facewright.media.kind import MediaKind
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.label import label_boxes
from facewright.score import metrics
from facewright.score.frames import paired_frames
from facewright.score.source import Source, face_area

SWAPPED_LEVEL = 8.0  # mean change inside the face hull that marks a swapped face; label + watermark move ~4
REGION_LEVEL = 10.0  # blurred change that puts a pixel into the region the swap replaced
CONTEXT = 1.5  # side of the crop for seam work, in face boxes
SEAM_WIDTH = 0.04  # rings either side of the seam, in face sizes
HEAD_MARGIN = 0.2  # the background starts this far (in face sizes) outside the head hull
LABEL_SHARE = 0.4  # share of a label box's pixels the label visibly changes (see _label_seen)
SAMPLES = 240  # frames whose identity is measured, spread over the clip (dlib: ~0.27 s a frame, 2 CPU cores)
FACE_REACH = 0.1  # the face hull grown by this (in face sizes) is where a hand is in front of the face
# A hand's region is drawn hands.FINGER_WIDTH (0.28) palm lengths wide around each bone, a finger is about 0.2:
# this much (in palm lengths) each side of the drawn region is not hand.
HAND_EDGE = 0.04


@dataclass
class FrameScore:
    """One frame's measurements; None where a measure could not be taken (no face, not sampled)."""

    frame: int
    time: float  # seconds
    face: bool  # a face was found in the input frame
    swapped: bool = False  # that face's region changed beyond what marking does
    face_change: float | None = None  # mean |output - input| inside the face hull, levels
    found_in_output: bool = False  # the landmarker found a face in the output at that place
    sface_to_source: float | None = None  # SFace cosine similarity to A's mean feature
    sface_to_target: float | None = None  # ... to the input's face
    as_source: bool | None = None  # by SFace: like A (>= SAME_PERSON), not like the input's face
    closer_to_source: bool | None = None  # by SFace: more like A than like the input's face
    dlib_to_source: float | None = None  # dlib L2 distance to A's mean embedding
    dlib_to_target: float | None = None
    dlib_as_source: bool | None = None
    dlib_closer_to_source: bool | None = None
    expression: float | None = None
    mouth_agrees: bool | None = None
    eyes_agree: bool | None = None
    pose_error: float | None = None  # degrees
    yaw_pitch_roll_error: tuple[float, float, float] | None = None
    yaw_pitch_roll_offset: tuple[float, float, float] | None = None  # signed: output minus input, degrees
    output_change: float | None = None  # frame-to-frame change in the face region, levels
    input_change: float | None = None
    seam: float | None = None  # delta E across the swap's border, output minus input
    sharpness: float | None = None  # detail in the face, output over input (1.0 = as sharp)
    background: float | None = None  # mean |output - input| outside the heads, levels
    background_changed: float | None = None  # share of those pixels changed beyond metrics.CHANGED_LEVEL
    hand_pixels: int | None = None  # hand pixels in front of the scored face (0: no hand there)
    hands_repainted: float | None = None  # share of them changed beyond metrics.REPAINTED_LEVEL
    box: tuple[float, float, float, float] | None = None  # the scored face, input pixels

    def to_dict(self) -> dict:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}



class FrameScorer:
    """Scores frame pairs in order; holds the face models and the previous frame (for flicker)."""

    def __init__(self, source: Source, encoder: IdentityEncoder, sface: SFaceEncoder, *, video: bool):
        self.source = source
        self.encoder, self.sface = encoder, sface
        self.inputs = Landmarker(video=video)
        self.hands = HandTracker(video=video)
        self.outputs = Landmarker()  # only its detect_in_box is used: the face at a box found in the input
        self._previous: tuple[int, Frame, Frame, Mask, FaceLandmarks] | None = None
        self._label_boxes: list[tuple[int, int, int, int]] | None = None  # every box a label can take
        self._label_area: np.ndarray | None = None  # those boxes as a uint8 mask
        self._label_seen: bool | None = None  # decided on the first frame

    def close(self) -> None:
        self.inputs.close()
        self.outputs.close()
        self.hands.close()

    def __enter__(self) -> FrameScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def score(self, index: int, time: float, output: Frame, reference: Frame, *, identity: bool) -> FrameScore:
        faces = self.inputs.detect(reference, time * 1000)
        result = FrameScore(index, time, face=bool(faces))
        result.background, result.background_changed = self._background(output, reference, faces)
        if not faces:
            self._previous = None
            return result
        hulls = [hull_mask(reference.shape, f.points68()) for f in faces]
        changes = [metrics.region_change(reference, output, hull) for hull in hulls]
        chosen = int(np.argmax(changes)) if max(changes) > SWAPPED_LEVEL else _largest_index(faces)
        face, hull = faces[chosen], hulls[chosen]
        result.swapped, result.face_change = changes[chosen] > SWAPPED_LEVEL, changes[chosen]
        result.box = tuple(float(v) for v in face.box)
        hands = self.hands.detect(reference, time * 1000, around_faces([f.box for f in faces], reference.shape))
        region = hands_in_front(reference.shape, hands, hull, face_size(face.points68()))
        result.hand_pixels, result.hands_repainted = metrics.repainted(output, reference, region)
        self._expression_and_pose(result, output, reference, face)
        if identity:
            self._identity(result, output, reference, face)
        self._flicker(result, index, output, reference, hull, face)
        result.seam = self._seam(output, reference, hull, face.points68())
        result.sharpness = metrics.sharpness_ratio(*_crops(_crop_box(hull, 1.0, reference.shape), output, reference,
                                                           hull))
        return result

    def _expression_and_pose(self, result: FrameScore, output: Frame, reference: Frame, face: FaceLandmarks) -> None:
        # Both faces measured the same way (one image-mode landmarker on a crop around the same box), so that an
        # unchanged face scores exactly r = 1 and 0 degrees: the video-mode tracker's smoothing would differ.
        swapped = self.outputs.detect_in_box(output, face.box)
        result.found_in_output = swapped is not None
        if swapped is None:
            return
        face = self.outputs.detect_in_box(reference, face.box)
        if face is None:  # the video-mode tracker's face is smoothed differently: no fair comparison
            return
        result.expression = metrics.expression_correlation(swapped.blendshapes, face.blendshapes)
        result.mouth_agrees = metrics.agrees(swapped.mouth_open, face.mouth_open, metrics.MOUTH_OPEN)
        result.eyes_agree = metrics.agrees(swapped.eyes_closed, face.eyes_closed, metrics.EYES_CLOSED)
        result.pose_error = metrics.pose_error(swapped.yaw_pitch_roll, face.yaw_pitch_roll)
        offset = metrics.pose_offset(swapped.yaw_pitch_roll, face.yaw_pitch_roll)
        result.yaw_pitch_roll_offset = tuple(round(float(v), 3) for v in offset)
        result.yaw_pitch_roll_error = tuple(round(float(abs(v)), 3) for v in offset)

    def _identity(self, result: FrameScore, output: Frame, reference: Frame, face: FaceLandmarks) -> None:
        points = face.points68()
        out, ref = self.sface.embed_crops([align(output, points), align(reference, points)])
        similar = metrics.similarity_score(out, self.source.sface, ref)
        result.sface_to_source, result.sface_to_target = similar.to_source, similar.to_target
        result.as_source, result.closer_to_source = similar.as_source, similar.closer_to_source
        out, ref = self.encoder.embed(output, face.box), self.encoder.embed(reference, face.box)
        score = metrics.identity_score(out, self.source.embedding, ref)
        result.dlib_to_source, result.dlib_to_target = score.to_source, score.to_target
        result.dlib_as_source, result.dlib_closer_to_source = score.as_source, score.closer_to_source

    def _flicker(self, result: FrameScore, index: int, output: Frame, reference: Frame, hull: Mask,
                 face: FaceLandmarks) -> None:
        previous = self._previous
        self._previous = (index, output, reference, hull, face)
        if previous is None or previous[0] != index - 1:
            return
        _, out_before, ref_before, hull_before, _ = previous
        region = np.maximum(hull, hull_before)
        result.output_change = metrics.region_change(out_before, output, region)
        result.input_change = metrics.region_change(ref_before, reference, region)

    def _seam(self, output: Frame, reference: Frame, hull: Mask, points: Points) -> float:
        size = face_size(points)
        out, ref, hull = _crops(_crop_box(hull, CONTEXT, reference.shape), output, reference, hull)
        region = swapped_region(out, ref, hull, size)
        width = max(2.0, SEAM_WIDTH * size)
        return metrics.seam(out, region, width) - metrics.seam(ref, region, width)

    def _background(self, output: Frame, reference: Frame, faces: list[FaceLandmarks]) -> tuple[float, float]:
        """Change outside every head and every box a visible label can be in (labelled or not: the same
        pixels are measured on every output)."""
        outside = np.ones(reference.shape[:2], np.uint8)
        for face in faces:
            points = face.points68()
            margin = max(1, round(HEAD_MARGIN * face_size(points)))
            head = (hull_mask(reference.shape, points, "head") > 0.5).astype(np.uint8)
            outside &= cv2.dilate(head, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) == 0
        if self._label_boxes is None:  # the same for every frame of a clip
            self._label_boxes, self._label_area = _label_area(reference.shape)
        outside &= self._label_area == 0
        if self._label_seen is None:
            self._label_seen = _label_seen(output, reference, self._label_boxes, outside)
        return metrics.outside_change(output, reference, outside)

    @property
    def label_seen(self) -> bool:
        return bool(self._label_seen)


def _label_area(shape: tuple[int, ...]) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """Every box a visible label (video or image text, any preset and corner) can take, and their union."""
    height, width = shape[:2]
    boxes = sorted({box for kind in MediaKind for box in label_boxes(width, height, kind)})
    area = np.zeros((height, width), np.uint8)
    for top, left, bottom, right in boxes:
        area[top:bottom, left:right] = 1
    return boxes, area


def _label_seen(output: Frame, reference: Frame, boxes: list[tuple[int, int, int, int]], outside: Mask) -> bool:
    """Whether a visible label darkens one of `boxes`: most of its pixels lost over half their level (or gained
    white text), against next to none of the background. A watermark's few levels never count; footage as
    dark as a corner of the sample clips still shows the label (0.56 to 0.97 of a box's pixels seen)."""
    level = reference.max(axis=2).astype(np.float32)
    changed = np.abs(output.astype(np.int16) - reference.astype(np.int16)).max(axis=2) > np.maximum(6, level / 2)
    background = changed[outside > 0].mean() if outside.any() else 0.0
    return any(changed[t:b, le:r].mean() > max(LABEL_SHARE, 3 * background) for t, le, b, r in boxes
               if b > t and r > le)


def hands_in_front(shape: tuple[int, ...], hands: list[Hand], hull: Mask, size: float) -> Mask:
    """H x W bool: the hands' core pixels (each hand's region less HAND_EDGE of its palm length) inside the face
    hull grown by FACE_REACH face sizes (`size`, pixels)."""
    height, width = shape[:2]
    core = np.zeros((height, width), bool)
    for hand in hands:
        edge = round(HAND_EDGE * hand.size)
        drawn = (hand_mask(shape, [hand]) > 0.5).astype(np.uint8)
        core |= (cv2.erode(drawn, np.ones((2 * edge + 1, 2 * edge + 1), np.uint8)) if edge else drawn) > 0
    if not core.any():
        return core
    reach = max(1, round(FACE_REACH * size))
    face = cv2.dilate((hull > 0.5).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    return core & face


def swapped_region(output: Frame, reference: Frame, hull: Mask, size: float) -> Mask:
    """The region the swap replaced: where the output differs from the input (smoothed), near the face hull.

    Found from the pixels, so it is the region of whatever tool made the output; the face hull itself when
    too little changed (an unswapped face), so the seam is still measured somewhere sensible.
    """
    difference = np.abs(output.astype(np.float32) - reference.astype(np.float32)).mean(axis=2)
    sigma = max(1.0, 0.02 * size)
    changed = cv2.GaussianBlur(difference, (0, 0), sigma) > REGION_LEVEL
    reach = max(1, round(0.15 * size))
    near = cv2.dilate((hull > 0.5).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    changed = _largest_component(changed & near)
    if changed.sum() < 0.2 * (hull > 0.5).sum():
        return (hull > 0.5).astype(np.float32)
    closed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    return closed.astype(np.float32)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _crop_box(mask: Mask, context: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the mask's bounding box grown `context` times about its centre, clipped."""
    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) == 0:
        return 0, 0, shape[0], shape[1]
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    half = context * max(ys.max() - ys.min(), xs.max() - xs.min()) / 2 + 2
    return (max(0, int(cy - half)), max(0, int(cx - half)), min(shape[0], int(cy + half) + 1),
            min(shape[1], int(cx + half) + 1))


def _crops(box: tuple[int, int, int, int], *images: np.ndarray) -> list[np.ndarray]:
    top, left, bottom, right = box
    return [image[top:bottom, left:right] for image in images]


def _largest_index(faces: list[FaceLandmarks]) -> int:
    return int(np.argmax([face_area(f) for f in faces]))


def score_frames(output: Path, target: Path, source: Source, *, samples: int = SAMPLES,
                 encoder: IdentityEncoder | None = None, sface: SFaceEncoder | None = None,
                 progress: ProgressFactory = no_progress) -> tuple[list[FrameScore], bool]:
    """Every frame pair of `output` (the swap) and `target` (what it was made from) scored; and whether a
    visible label was seen."""
    pairs, count, video = paired_frames(output, target)
    identity_frames = spread(count, samples)
    frames = []
    with (FrameScorer(source, encoder or IdentityEncoder(), sface or SFaceEncoder(), video=video) as scorer,
          progress(total=count or None, desc=f"score {output.name}", unit="frame") as bar):
        for index, time, out, ref in pairs:
            frames.append(scorer.score(index, time, out, ref, identity=count == 0 or index in identity_frames))
            bar.update(1)
    if not any(f.face for f in frames):
        raise NoFaceError(f"no face in any frame of {target.name}: there is nothing to score", path=target,
                          fix="pass the footage the swap was made from, with the face that was swapped")
    return frames, scorer.label_seen


def spread(count: int, samples: int) -> set[int]:
    """Up to `samples` frame indices spread evenly over `count` frames (all of them when there are fewer)."""
    if count <= 0 or samples <= 0:
        return set()
    return {int(i) for i in np.linspace(0, count - 1, min(count, samples)).round()}
