"""Extraction: photos and videos in, an aligned, scored, de-duplicated, identity-checked faceset out.

Per input file: decode, find faces (photos: detector + landmarks in each box; videos: the landmarker's own
tracking), align, score, de-duplicate, embed, write crop + mask, then record the file and its faces in
one catalog transaction. A bad file is reported and skipped; a finished file is skipped on re-run.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facewright.collect.chunks import WARM as CHUNK_WARM
from facewright.collect.chunks import ChunkContext, extract_chunk, extract_chunks
from facewright.collect.inputs import MediaFile, expand_inputs, frame_step
from facewright.collect.measure import STAGES, FaceMeasurer, MeasuredFace, timed_decoding
from facewright.collect.quality import Deduper
from facewright.collect.records import FaceRecord
from facewright.collect.store import FacesetStore, relative, sampling_key
from facewright.collect.tracks import TrackRecorder
from facewright.config import ExtractOptions
from facewright.errors import ConsentError, InputError, NoFaceError, NoVideoStreamError
from facewright.faces.detect import create_detector
from facewright.faces.identity import IdentityEncoder, distance
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.faces.track import Tracker
from facewright.faces.types import Detection
from facewright.files import atomic_path, check_output, sha256_file
from facewright.media import VideoReader, probe, read_image
from facewright.media.image import Frame
from facewright.media.kind import MediaKind
from facewright.media.segments import Chunk
from facewright.media.video import MediaInfo, VideoFrame
from facewright.prefetch import close_source, prefetch
from facewright.progress import Bar, ProgressFactory, no_progress
from facewright.timing import Timer
from facewright.workers import LazyPool, Pool
from facewright.workspace import Workspace


@dataclass
class InputReport:
    path: Path
    kind: MediaKind
    frames: int = 0  # frames (or photos) looked at
    frames_with_face: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    corrupt_frames: int = 0
    problems: tuple[str, ...] = ()  # what probing the file found (cut short, ...): its faces are extracted all the same
    kept_earlier: int = 0  # faces an earlier run (other sampling) kept and this one would reject: left kept
    skipped: bool = False  # finished in an earlier run
    error: str | None = None
    sha256: str | None = None


@dataclass
class ExtractReport:
    faceset: str
    folder: Path
    inputs: list[InputReport]
    other_identities: list[int]  # sizes of the identity clusters rejected as not this person
    counts: dict[str, int]  # the faceset's totals: 'kept' and each rejection reason
    stage_seconds: dict[str, float]
    seconds: float


class FaceProcessor:
    """Per-face work shared by photos and frames: measure, then de-duplicate, identify and write (`admit`)."""

    def __init__(self, store: FacesetStore, measurer: FaceMeasurer, reference: np.ndarray | None):
        self.store, self.measurer, self.reference = store, measurer, reference
        self.options, self.timer = measurer.options, measurer.timer
        self.deduper = Deduper(self.options.dedupe, store.kept_hashes())

    def process(self, image: Frame, face: FaceLandmarks, stem: str, frame: int, index: int,
                pts: int | None = None, at: float | None = None, track: int | None = None) -> FaceRecord:
        return self.admit(self.measurer.measure(image, face, frame, index, pts, at, track), stem, image)

    def admit(self, face: MeasuredFace, stem: str, image: Frame | None = None) -> FaceRecord:
        """De-duplicate, identify and write a measured face. `image`: its frame, to embed it from, unless a
        worker did (the record's embedding) for every face that passed the quality checks."""
        record = face.record
        with self.timer("score"):
            if record.reason is None and self.deduper.is_duplicate(record.crop_hash, crop_name(stem, record)):
                record.reason = "duplicate"
                record.embedding = None  # as one process leaves it: a duplicate is never embedded
        if record.reason is None:
            if record.embedding is None:
                record.embedding = self.measurer.embedding(image, record, stem)
            if self.reference is not None and distance(record.embedding, self.reference) > self.options.threshold:
                record.reason = "other identity"
        if record.reason is None:
            self.deduper.add(record.crop_hash, crop_name(stem, record))
            self._write(face.files or self.measurer.encode(face), record, stem)
        return record

    def _write(self, files: tuple[bytes, bytes], record: FaceRecord, stem: str) -> None:
        with self.timer("write"):
            self.store.ensure()
            name = crop_name(stem, record)
            crop = write_private(self.store.folder / "faces" / f"{name}.{self.measurer.suffix}", files[0])
            mask = write_private(self.store.folder / "masks" / f"{name}.png", files[1])
            record.crop_path = relative(crop, self.store.folder)
            record.mask_path = relative(mask, self.store.folder)
            record.crop_sha256 = hashlib.sha256(files[0]).hexdigest()  # training refuses a crop changed after this


def write_private(path: Path, data: bytes) -> Path:
    """`data` into `path`, atomically, readable by its owner only: crops and masks are biometric data."""
    with atomic_path(check_output(path, ()), private=True) as tmp:
        tmp.write_bytes(data)
    return path


def crop_name(stem: str, record: FaceRecord) -> str:
    """The file name (without suffix) of a face's crop and mask: one per (source file, frame, face)."""
    return f"{stem}_{record.frame_index:06d}_{record.face_index}"


def extract(inputs: list[str | Path], identity: str, ws: Workspace, options: ExtractOptions = ExtractOptions(),
            progress: ProgressFactory = no_progress, consent_embedding: np.ndarray | None = None,
            pool: Pool | None = None) -> ExtractReport:
    """Extract the faces of `identity` from photos, folders, globs and videos into faceset `identity`.

    `consent_embedding`: the face in the person's consent photo. It is the reference that decides which
    faces are theirs (unless --reference names another photo of them), so a faceset only ever holds the
    faces of the person who consented. A video long enough to split is extracted in chunks on `pool`
    (default: a local pool of `options.workers` processes; see chunks.py). Raises NoFaceError when no input
    holds a usable face (nothing is written if none holds any face).
    """
    start, timer = time.perf_counter(), Timer(STAGES)
    store = FacesetStore(ws, identity, options)
    files = expand_inputs(inputs)
    encoder = IdentityEncoder()
    with _PhotoFinder(options) as photos, LazyPool(pool, options.workers, CHUNK_WARM, helps=True) as pools:
        reference = _reference(options, photos, encoder, consent_embedding)
        processor = FaceProcessor(store, FaceMeasurer(options, encoder, timer), reference)
        runner = InputRunner(ws, store, processor, photos, timer, progress, pools)
        reports = [runner.run(media) for media in files]
    others = store.keep_largest_identity(options.threshold) if store.id is not None and reference is None else []
    if others:  # the identity pass rejected faces after the per-file tallies
        for media in reports:
            _recount(media, store)
    report = ExtractReport(identity, store.folder, reports, others, store.counts() if store.id else {},
                           timer.seconds, time.perf_counter() - start)
    _check_found(report, options)
    return report


def _check_found(report: ExtractReport, options: ExtractOptions) -> None:
    looked = [s for s in report.inputs if not s.skipped and s.error is None]
    if not looked or any(s.kept or s.kept_earlier for s in looked):
        return
    rejected = sum((s.rejected for s in looked), Counter())
    if set(rejected) == {"duplicate"}:  # a re-run: every face it met is in the faceset already
        return
    names = ", ".join(s.path.name for s in looked[:3]) + (" ..." if len(looked) > 3 else "")
    path = looked[0].path if len(looked) == 1 else None
    unreadable = _unreadable(report)
    if not rejected:
        raise NoFaceError(f"no face found in {names}{unreadable}", path=path,
                          fix="give photos or videos where a face is visible; nothing was written")
    reasons = ", ".join(f"{n} {r}" for r, n in rejected.most_common())
    raise NoFaceError(f"no usable face in {names}: {reasons}{unreadable}", path=path,
                      fix=f"use closer or sharper footage, or relax --min-face ({options.min_face}) / "
                          f"--min-sharpness ({options.min_sharpness}) / --reference")


def _unreadable(report: ExtractReport) -> str:
    """The files of the batch that could not be read, one line each: an error about the others must not hide
    them."""
    failed = [s for s in report.inputs if s.error]
    if not failed:
        return ""
    lines = "".join(f"\n  {s.error.splitlines()[0]}" for s in failed)
    return f"; {len(failed)} other file(s) could not be read:{lines}"


class InputRunner:
    """Runs one input file (photo or video) through the processor and records it in the faceset."""

    def __init__(self, ws: Workspace, store: FacesetStore, processor: FaceProcessor, photos: _PhotoFinder,
                 timer: Timer, progress: ProgressFactory, pools: LazyPool):
        self.ws, self.store, self.processor, self.photos = ws, store, processor, photos
        self.options, self.timer, self.progress, self.pools = processor.options, timer, progress, pools

    def run(self, media: MediaFile) -> InputReport:
        report = InputReport(media.path, media.kind)
        try:
            info = probe(media.path) if media.kind == MediaKind.VIDEO else None
            if info is not None and info.video is None:
                raise NoVideoStreamError("no video stream (audio only?): there are no faces to extract",
                                         path=media.path, fix="give a video or photos of the person")
            report.problems = info.problems if info is not None else ()
            sha = report.sha256 = sha256_file(media.path)
            if self.store.is_done(sha, sampling_key(self.options)):
                report.skipped = True
                return report
            if info is None:
                records, frames, corrupt = self._photo(media, sha)
            else:
                records, frames, corrupt = self._video(media, sha, info)
            _tally(report, records, frames, corrupt, self.store.kept_earlier(sha))
            if records:
                self.store.save_input(info or _photo_info(media.path), sha, media.kind,
                                       sampling_key(self.options), records, frames, corrupt)
        except InputError as exc:  # a batch goes on past one bad file
            report.error = str(exc)
        return report

    def _photo(self, media: MediaFile, sha: str) -> tuple[list[FaceRecord], int, int]:
        with self.timer("decode"):
            image = read_image(media.path)
        with self.timer("landmarks"):
            faces = self.photos.find(image)
        return [self.processor.process(image, face, sha[:16], 0, i) for i, face in enumerate(faces)], 1, 0

    def _video(self, media: MediaFile, sha: str, info: MediaInfo) -> tuple[list[FaceRecord], int, int]:
        step = frame_step(info.video.fps, self.options.every, self.options.fps)
        # --for-swap keeps every frame's landmarks of whole tracks: one process
        chunks = extract_chunks(media.path, info, self.pools.size) if not self.options.for_swap else []
        if len(chunks) > 1:
            records, sampled, decoded = self._video_chunked(media, sha, step, chunks)
            return records, sampled, info.video.frames - decoded
        tracker = Tracker(max_gap=max(15, 3 * step))
        geometry = TrackRecorder(self.processor.measurer.encoder) if self.options.for_swap else None
        records: list[FaceRecord] = []
        sampled_frames = 0
        with VideoReader(media.path, strict=False) as reader, \
                Landmarker(video=True, max_faces=self.options.max_faces) as landmarker, \
                self.progress(total=info.video.frames, desc=f"extract {media.path.name}", unit="frame") as bar, \
                closing(prefetch(self._landmarked(reader, landmarker, step, geometry is not None))) as found:
            for frame, sampled, faces in found:  # `found` is closed (its threads stopped) before the reader
                sampled_frames += sampled
                if faces is not None:
                    tracks = tracker.update(frame.index, [Detection(f.box, 1.0) for f in faces])
                    if geometry is not None:
                        geometry.add(frame, faces, tracks)
                    if sampled:
                        records += self._frame_records(frame, faces, tracks, sha)
                _show(bar, records)
        if geometry is not None and geometry.tracks:
            geometry.save(self.ws, info, sha)
        # the frames its index lists that never decoded: damaged packets, or a file cut short (not a strict reader)
        return records, sampled_frames, max(reader.corrupt_packets, info.video.frames - reader.decoded)

    def _video_chunked(self, media: MediaFile, sha: str, step: int,
                       chunks: list[Chunk]) -> tuple[list[FaceRecord], int, int]:
        """The chunks measured on the pool, then admitted here in frame order (chunks.py); with the sampled and the
        decoded frames."""
        pool = self.pools.get()
        context = ChunkContext(media.path.resolve(), self.options, step, sha[:16])  # workers elsewhere
        with self.progress(total=chunks[-1].stop, desc=f"extract {media.path.name} ({len(chunks)} chunks, "
                           f"{pool.workers} workers)", unit="frame") as bar:
            parts = pool.map(extract_chunk, context, chunks, done=lambda _, part: bar.update(part.frames))
            records, tracks = [], 0
            for part in parts:
                for face in part.faces:
                    face.record.track += tracks  # a chunk's tracks are its own: numbered on after the last's
                    records.append(self.processor.admit(face, sha[:16]))
                tracks += part.tracks
                for stage, seconds in part.stage_seconds.items():  # the workers' seconds, summed
                    self.timer.seconds[stage] = self.timer.seconds.get(stage, 0.0) + seconds
            kept = sum(1 for r in records if r.reason is None)
            bar.set_postfix(kept=kept, rejected=len(records) - kept)
        return records, sum(p.sampled for p in parts), sum(p.frames for p in parts)

    def _landmarked(self, reader: VideoReader, landmarker: Landmarker, step: int,
                    every_frame: bool) -> Iterator[tuple[VideoFrame, bool, list[FaceLandmarks] | None]]:
        """(frame, sampled, faces or None): decoded ahead in a thread (`timed_decoding`), the landmark model run in
        the caller's `prefetch` thread."""
        frames = timed_decoding(reader, self.timer)
        try:
            for frame in frames:
                sampled = frame.index % step == 0
                if not (sampled or every_frame):
                    yield frame, False, None
                    continue
                with self.timer("landmarks"):
                    faces = landmarker.detect(frame.image, frame.time * 1000)
                yield frame, sampled, faces
        finally:
            close_source(frames)  # its thread stopped now, even when the model's error outlives this stage

    def _frame_records(self, frame: VideoFrame, faces: list[FaceLandmarks], tracks: list[int],
                       sha: str) -> list[FaceRecord]:
        return [self.processor.process(frame.image, face, sha[:16], frame.index, i, frame.pts, frame.time, track)
                for i, (face, track) in enumerate(zip(faces, tracks, strict=True))]


def _tally(report: InputReport, records: list[FaceRecord], frames: int, corrupt: int,
           kept_earlier: set[tuple[int, int]]) -> None:
    """Count this run's faces; one an earlier run kept is not counted as rejected now (save_input keeps it)."""
    report.frames, report.corrupt_frames = frames, corrupt
    report.frames_with_face = len({r.frame_index for r in records})
    report.kept = sum(1 for r in records if r.reason is None)
    rejected = [r for r in records if r.reason]
    report.kept_earlier = sum(1 for r in rejected if (r.frame_index, r.face_index) in kept_earlier)
    report.rejected = Counter(r.reason for r in rejected if (r.frame_index, r.face_index) not in kept_earlier)


def _recount(report: InputReport, store: FacesetStore) -> None:
    if report.sha256 is None or report.skipped or report.error:
        return
    counts = store.source_counts(report.sha256)
    report.kept = counts.pop("kept", 0)
    report.rejected = Counter(counts)


def _show(bar: Bar, records: list[FaceRecord]) -> None:
    kept = sum(1 for r in records if r.reason is None)
    bar.set_postfix(kept=kept, rejected=len(records) - kept, refresh=False)
    bar.update(1)


class _PhotoFinder:
    """Faces in a photo: a detector for the boxes (small and far faces too), then landmarks in each box."""

    def __init__(self, options: ExtractOptions):
        self.options = options
        self._detector = None
        self._landmarker = None

    def __enter__(self) -> _PhotoFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        for model in (self._detector, self._landmarker):
            if model is not None:
                model.close()

    def find(self, image: Frame) -> list[FaceLandmarks]:
        if self._detector is None:  # made on first use: a video-only run never loads them
            self._detector = create_detector(self.options.detector)
            self._landmarker = Landmarker(max_faces=1)
        boxes = [d.box for d in self._detector.detect(image)][: self.options.max_faces * 4]
        return [f for f in (self._landmarker.detect_in_box(image, box) for box in boxes) if f is not None]


def _reference(options: ExtractOptions, photos: _PhotoFinder, encoder: IdentityEncoder,
               consent_embedding: np.ndarray | None) -> np.ndarray | None:
    """The face to keep: the --reference photo's, else the consent photo's; the two must be one person."""
    if not options.reference:
        return consent_embedding
    reference = _reference_embedding(options.reference, photos, encoder)
    if consent_embedding is not None and distance(reference, consent_embedding) > options.threshold:
        raise ConsentError("the --reference photo shows someone other than the person in the consent photo",
                           path=options.reference, fix="give a reference photo of the person who consented")
    return reference


def _reference_embedding(path: str, photos: _PhotoFinder, encoder: IdentityEncoder) -> np.ndarray:
    """The embedding of the (largest) face in the reference photo."""
    image = read_image(path)
    faces = photos.find(image)
    if not faces:
        raise NoFaceError("no face found in the reference photo", path=path,
                          fix="give a clear photo of the person to keep")
    largest = max(faces, key=lambda f: float(f.box[2] - f.box[0]))
    return encoder.embed(image, largest.box)


def _photo_info(path: Path) -> MediaInfo:
    return MediaInfo(path=path, container="image", size_bytes=path.stat().st_size, duration=None, streams=())
