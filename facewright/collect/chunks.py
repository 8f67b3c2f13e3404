"""A video's extraction in chunks on a pool of processes (facewright.workers).

Each worker decodes one chunk (it starts on a keyframe), runs the landmark model and the tracker over it,
and aligns, scores, embeds and encodes every sampled face that passes the quality checks: the work that
needs pixels. The driver then admits the faces in frame order, exactly as one process does:
de-duplication (which depends on the faces before), the identity reference, writing the files and the
catalog. A track is cut at a chunk boundary (extraction's tracks only group faces; the swap, whose tracks
carry smoothing and color, stitches them instead).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from facewright.collect.measure import STAGES, FaceMeasurer, MeasuredFace, timed_decoding
from facewright.collect.quality import Deduper
from facewright.config import ExtractOptions
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.faces.track import Tracker
from facewright.faces.types import Detection
from facewright.media.segments import Chunk, read_chunk, video_chunks
from facewright.media.video import MediaInfo, VideoFrame
from facewright.prefetch import close_source, prefetch
from facewright.timing import Timer

MIN_CHUNK_SECONDS = 4.0  # a shorter chunk costs its worker more in start-up (models loaded) than it gains
WARM = ("numpy", "cv2", "av", "mediapipe", "dlib")  # what a worker imports as it starts: no torch


def extract_chunks(path: Path, info: MediaInfo, parts: int) -> list[Chunk]:
    """The chunks a video is extracted in by `parts` workers: one (the whole) when it is too short to split."""
    return video_chunks(path, info.video, parts, MIN_CHUNK_SECONDS)


@dataclass(frozen=True)
class ChunkContext:
    path: Path
    options: ExtractOptions
    step: int  # every Nth frame is sampled
    stem: str  # the crops' names start with it


@dataclass
class ChunkFaces:
    chunk: Chunk
    faces: list[MeasuredFace] = field(repr=False)  # in frame order
    frames: int  # decoded
    sampled: int
    tracks: int  # track ids used: 0 .. tracks - 1
    stage_seconds: dict[str, float]


def extract_chunk(context: ChunkContext, chunk: Chunk) -> ChunkFaces:
    timer = Timer(STAGES)
    measurer = FaceMeasurer(context.options, IdentityEncoder(), timer)
    tracker = Tracker(max_gap=max(15, 3 * context.step))
    local = Deduper(context.options.dedupe)  # the chunk's own faces: a guess at what the driver keeps
    faces, frames, sampled = [], 0, 0
    with Landmarker(video=True, max_faces=context.options.max_faces) as landmarker, \
            closing(prefetch(_landmarked(read_chunk(context.path, chunk), landmarker, context.step, timer))) as seen:
        for frame, found in seen:  # closed, its threads stopped, before the landmarker
            frames += 1
            if found is None:
                continue
            sampled += 1
            tracks = tracker.update(frame.index, [Detection(f.box, 1.0) for f in found])
            for i, (face, track) in enumerate(zip(found, tracks, strict=True)):
                faces.append(_measure(measurer, local, frame, face, i, track, context.stem))
    return ChunkFaces(chunk, faces, frames, sampled, 1 + max((f.record.track for f in faces), default=-1),
                      dict(timer.seconds))


def _measure(measurer: FaceMeasurer, local: Deduper, frame: VideoFrame, face: FaceLandmarks, index: int,
             track: int, stem: str) -> MeasuredFace:
    """A face measured, and for one that passes the quality checks its embedding. Its files are encoded here
    unless it repeats a face of this chunk (most frames of a steady shot do, and the driver will reject them
    as duplicates): then the crop goes to the driver as pixels, to encode in the rare case it keeps it."""
    measured = measurer.measure(frame.image, face, frame.index, index, frame.pts, frame.time, track)
    record = measured.record
    if record.reason is not None:
        measured.aligned = None  # rejected for its quality whatever comes before it
        return measured
    record.embedding = measurer.embedding(frame.image, record, stem)
    if not local.is_duplicate(record.crop_hash):
        local.add(record.crop_hash)
        measured.files, measured.aligned = measurer.encode(measured), None
    return measured


def _landmarked(frames: Iterable[VideoFrame], landmarker: Landmarker, step: int, timer: Timer
                ) -> Iterator[tuple[VideoFrame, list[FaceLandmarks] | None]]:
    """(frame, faces or None when the frame is not sampled), decoding and the landmark model timed."""
    decoded = timed_decoding(frames, timer)
    try:
        for frame in decoded:
            if frame.index % step:
                yield frame, None
                continue
            with timer("landmarks"):
                faces = landmarker.detect(frame.image, frame.time * 1000)
            yield frame, faces
    finally:
        close_source(decoded)  # its thread stopped and the chunk's reader closed now, even after the model's error
