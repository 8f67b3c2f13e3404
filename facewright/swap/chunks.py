"""A long video swapped in chunks on a pool of processes (facewright.workers): both passes split at keyframes.

Pass 1, `scan_chunk`: each chunk's faces found, tracked and checked against the consent photos on its own.
The driver stitches a track that runs on across a chunk boundary (no cut there, the same face in the same
place, within MAX_GAP frames) into one, so choosing the tracks, the consent verdicts, the landmark smoothing
and the color statistics see every track whole, as in one process.
Pass 2, `render_chunk`: each chunk's chosen faces rendered, composited, labelled and watermarked, and the
frames encoded into a segment file with the input's timestamps and the output's encoder settings. The
driver joins the segments without re-encoding them, muxes the input's audio in once, signs the file once
and records it: workers never touch the catalog or the signing key.
On a pool that keeps a chain's stages apart (Ray with GPUs), pass 2 is two tasks per chunk: `render_faces`
(the model, on a GPU) and `composite_chunk` (the rest, on CPUs), the rendered faces handed between them; both
decode the chunk, and their frames are those of `render_chunk` exactly.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from facewright import __version__
from facewright.collect.tracks import stored_faces
from facewright.config import SwapOptions, VideoOptions, made_by, to_dict
from facewright.errors import DiskFullError, InvalidMediaError, WorkerLostError
from facewright.faces.boxes import box_iou
from facewright.faces.hands import HandTracker
from facewright.faces.identity import THRESHOLD, IdentityEncoder, pairwise_distance
from facewright.faces.landmarks import FaceLandmarks, Landmarker
from facewright.faces.sface import SFaceEncoder
from facewright.faces.track import MIN_IOU, greedy_assign
from facewright.faces.types import Points
from facewright.files import atomic_path, sha256_file, staging
from facewright.media.image import Frame
from facewright.media.kind import MediaKind
from facewright.media.segments import Chunk, join_segments, read_chunk, video_chunks
from facewright.media.transcode import batches, transcode_chunk
from facewright.media.video import probe
from facewright.prefetch import decoded_ahead, prefetch
from facewright.provenance.likeness import Reference
from facewright.provenance.mark import FrameMarker, MarkPlan, MarkResult, seal
from facewright.swap.color import ColorMap
from facewright.swap.compose import Compositor, Prerendered, Rendered, face_jobs, fit_track_colors
from facewright.swap.footage import MAX_GAP, MAX_SAMPLES, FaceTrack, Footage, FootageScanner, sighted
from facewright.swap.identity import IdentityChecker
from facewright.swap.model import SwapModel
from facewright.swap.occlusion import Occlusion
from facewright.swap.pipeline import (
    FrameRenderer,
    SwapJob,
    SwapResult,
    chosen_faces,
    preview_frames,
    write_preview,
)
from facewright.swap.smooth import is_cut
from facewright.train.distributed import Dist, pick_device
from facewright.train.mask_model import MaskModel
from facewright.workers import Pool

M = TypeVar("M", SwapModel, MaskModel, None)  # a model that renders on its `device` with its `network`
MIN_CHUNK_SECONDS = 4.0  # a shorter chunk costs its worker more in start-up (models loaded) than it gains


def swap_chunks(input: Path, parts: int) -> list[Chunk]:
    """The chunks a video is swapped in by `parts` workers: one (the whole) when it is too short to split."""
    return video_chunks(input, probe(input).video, parts, MIN_CHUNK_SECONDS)


# --- pass 1: faces found, tracked and checked per chunk; tracks stitched on the driver ------------------------


@dataclass(frozen=True)
class ScanContext:
    input: Path
    resolution: int  # the model's crop, for the color samples
    face_type: str
    cut_threshold: float
    max_faces: int
    reference: Reference  # the target's consent photos, which every track is checked against


@dataclass(frozen=True)
class ScanTask:
    chunk: Chunk
    stored: Mapping[int, list[FaceLandmarks]] | None = None  # landmarks an `extract --for-swap` stored


@dataclass
class ChunkFootage:
    chunk: Chunk
    footage: Footage  # track ids and checks are the chunk's own
    first: Frame  # the chunk's first and last frame: is there a cut at its boundaries?
    last: Frame
    check_seconds: float
    seconds: float


def scan_chunk(context: ScanContext, task: ScanTask) -> ChunkFootage:
    start = time.perf_counter()
    dlib = IdentityEncoder()
    checker = IdentityChecker(context.reference, SFaceEncoder(), dlib)
    scanner = FootageScanner(dlib, context.resolution, context.face_type, context.cut_threshold, checker)
    first = last = None
    with contextlib.ExitStack() as stack:
        landmarker = None if task.stored is not None else stack.enter_context(
            Landmarker(video=True, max_faces=context.max_faces))
        found = stack.enter_context(contextlib.closing(prefetch(sighted(
            decoded_ahead(read_chunk(context.input, task.chunk)), landmarker, task.stored))))
        for frame, faces in found:
            scanner.add(frame.index, frame.time, frame.image, faces)
            first = frame.image if first is None else first
            last = frame.image
    if first is None:
        raise InvalidMediaError(f"frames {task.chunk.first}-{task.chunk.stop - 1} could not be decoded",
                                path=context.input, fix="use --workers 1 for this file, or re-encode it")
    return ChunkFootage(task.chunk, scanner.footage(), first, last, checker.seconds, time.perf_counter() - start)


def merge_footage(parts: Sequence[ChunkFootage], cut_threshold: float) -> Footage:
    """The chunks' footage as one: a track that ends near a chunk's end and one that starts near the next
    chunk's start in the same place (no cut between the two frames) become one track."""
    tracks: list[FaceTrack] = []
    cuts: list[int] = []
    ends: list[FaceTrack] = []  # the merged tracks that may go on into the next chunk
    for k, part in enumerate(parts):
        footage, chunk = part.footage, part.chunk
        boundary_cut = k > 0 and is_cut(parts[k - 1].last, part.first, cut_threshold)
        cuts += ([chunk.first] if boundary_cut else []) + footage.cuts
        first_cut = min(footage.cuts, default=chunk.stop)
        starting = [t for t in footage.tracks if t.frames[0] < first_cut and t.frames[0] - chunk.first <= MAX_GAP]
        links = {} if boundary_cut else _links(ends, starting)
        last_cut = max(footage.cuts, default=chunk.first)
        ends = []
        for track in footage.tracks:
            merged = links.get(track.id)
            if merged is None:
                merged = FaceTrack(len(tracks))
                tracks.append(merged)
            _extend(merged, track)
            if track.frames[0] >= last_cut and chunk.stop - track.frames[-1] <= MAX_GAP:
                ends.append(merged)
    return Footage(tracks, cuts, sum(p.footage.frames for p in parts))


def _links(ends: Sequence[FaceTrack], starting: Sequence[FaceTrack]) -> dict[int, FaceTrack]:
    """chunk track id -> the merged track it continues: boxes overlapping as the tracker's would, and the
    same person where both have identity samples."""
    if not ends or not starting:
        return {}
    iou = box_iou(np.stack([_box(t.points[-1]) for t in ends]), np.stack([_box(t.points[0]) for t in starting]))
    allowed = iou >= MIN_IOU
    for i, end in enumerate(ends):
        for j, start in enumerate(starting):
            gap = start.frames[0] - end.frames[-1]
            same = (not end.embeddings or not start.embeddings
                    or pairwise_distance(np.stack(end.embeddings[-1:]), np.stack(start.embeddings[:1]))[0, 0]
                    <= THRESHOLD)
            allowed[i, j] &= 0 < gap <= MAX_GAP + 1 and bool(same)
    return {starting[j].id: ends[i] for i, j in greedy_assign(-iou, allowed)}


def _box(points: Points) -> np.ndarray:
    points = np.asarray(points, np.float32)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _extend(merged: FaceTrack, part: FaceTrack) -> None:
    merged.frames += part.frames
    merged.times += part.times
    merged.points += part.points
    merged.embeddings += part.embeddings
    merged.checks += part.checks
    samples = merged.samples + part.samples  # evenly over the whole track, as one scanner keeps them
    keep = np.unique(np.linspace(0, len(samples) - 1, min(len(samples), MAX_SAMPLES)).round().astype(int))
    merged.samples = [samples[i] for i in keep]


# --- pass 2: each chunk rendered, marked and encoded into a segment; the driver joins, signs, records ----------


@dataclass(frozen=True)
class RenderContext:
    input: Path
    model: SwapModel | None  # None where the model runs in a task of its own (`render_faces`)
    face_type: str
    options: SwapOptions
    colors: Mapping[int, ColorMap]
    mask_model: MaskModel | None
    hands: bool
    plan: MarkPlan
    video: VideoOptions
    folder: Path  # where the segments go (beside the output: storage the driver sees)


@dataclass(frozen=True)
class RenderTask:
    chunk: Chunk
    faces: Mapping[int, list[tuple[int, Points]]]  # frame -> [(track, smoothed points)] of this chunk
    preview: frozenset[int] = frozenset()

    def digest(self) -> str:
        """What this chunk renders (its faces, where, which frames the preview takes): a resumed swap keeps a
        chunk rendered before only if it would render the same now (the consent checks ran again)."""
        h = hashlib.sha256(f"{self.chunk.first} {self.chunk.frames} {sorted(self.preview)}".encode())
        for frame in sorted(self.faces):
            for track, points in self.faces[frame]:
                h.update(f"{frame} {track}".encode())
                h.update(np.ascontiguousarray(points, np.float32).tobytes())
        return h.hexdigest()


@dataclass
class ChunkRender:
    chunk: Chunk
    segment: Path
    frames: int
    thumbnails: list = field(repr=False)  # the marked frames' fingerprints (provenance.fingerprint)
    strip: list[tuple[Frame, Frame]] = field(repr=False)  # preview rows
    stages: dict[str, float]
    seconds: float


def render_chunk(context: RenderContext, task: RenderTask) -> ChunkRender:
    """Pass 2 of one chunk in one task: its faces rendered, composited, marked and encoded into its segment."""
    return _segment(context, task, lambda occlusion: Compositor(_placed(context.model, context.options.device),
                                                                context.options, dict(context.colors), occlusion))


@dataclass(frozen=True)
class ChunkFaces:
    """What a chunk's render task hands its composite task: the faces, and the task's seconds (per stage, and
    in all) for the swap's stage report."""

    rendered: Rendered
    stages: dict[str, float]
    seconds: float


def render_faces(context: RenderContext, task: RenderTask) -> ChunkFaces:
    """The model's part of `render_chunk` alone (a GPU task): the chunk's chosen faces rendered, batch by batch of
    frames exactly as `render_chunk` renders them, in frame order. Only `input`, `model` and `options` of
    `context` are used."""
    start = time.perf_counter()
    compositor = Compositor(_placed(context.model, context.options.device), context.options)
    parts = []
    for frames in prefetch(batches(read_chunk(context.input, task.chunk), max(1, context.options.batch)), depth=2):
        jobs = face_jobs([task.faces.get(f.index, []) for f in frames])
        if jobs:
            parts.append(compositor.render([f.image for f in frames], jobs)[0])
    return ChunkFaces(Rendered.join(parts, compositor.model.resolution), dict(compositor.timer.seconds),
                      time.perf_counter() - start)


def composite_chunk(context: RenderContext, task: RenderTask, faces: ChunkFaces) -> ChunkRender:
    """The rest of `render_chunk` (a CPU task), with the faces `render_faces` rendered: composited, marked and
    encoded into the chunk's segment. `context.model` may be None. The render task's stage times and seconds
    are added to this one's: the chunk's worker-seconds, as `render_chunk` reports them."""
    made: list[Prerendered] = []
    rendered = faces.rendered

    def compositor(occlusion: Occlusion) -> Prerendered:
        made.append(Prerendered(rendered, context.options, context.face_type, dict(context.colors), occlusion))
        return made[-1]

    result = _segment(context, task, compositor)
    if made[0].used != len(rendered):
        raise ValueError(f"chunk {task.chunk.index}: {len(rendered)} faces rendered, {made[0].used} composited")
    return dataclasses.replace(result, stages={**faces.stages, **result.stages}, seconds=faces.seconds + result.seconds)


def _segment(context: RenderContext, task: RenderTask,
             compositor_for: Callable[[Occlusion], Compositor | Prerendered]) -> ChunkRender:
    start = time.perf_counter()
    occlusion = Occlusion(HandTracker(video=True) if context.hands else None,
                          _placed(context.mask_model, context.options.device), context.options.mouth == "keep")
    with contextlib.closing(occlusion):
        compositor = compositor_for(occlusion)
        render = FrameRenderer(compositor, dict(task.faces), FrameMarker(context.plan, MediaKind.VIDEO),
                               set(task.preview), None)
        segment = context.folder / f"chunk_{task.chunk.index:04d}.mp4"
        frames = transcode_chunk(context.input, task.chunk, segment, options=context.video, batch_fn=render,
                                 batch=context.options.batch)
    result = ChunkRender(task.chunk, segment, frames, render.marker.recorder.kept, render.strip,
                         dict(compositor.timer.seconds), time.perf_counter() - start)
    save_render(result, task.digest())
    return result


def _portable(model: M) -> M:
    """A model (SwapModel, MaskModel) as it travels to a worker: its weights on the CPU (a worker may have no
    GPU, or another one)."""
    if model is None or model.device.type == "cpu":
        return model
    return dataclasses.replace(model, network=copy.deepcopy(model.network).to("cpu"), device=torch.device("cpu"))


def _placed(model: M, device: str) -> M:
    """The model on this worker's device (`--device`; auto: its GPU if it has one)."""
    if model is None:
        return model
    place = pick_device(device, Dist())
    if place == model.device:
        return model
    network = model.network.to(place)
    if place.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
    return dataclasses.replace(model, network=network, device=place)


def save_render(result: ChunkRender, task: str) -> None:
    """What the driver needs of a rendered chunk besides its segment, beside it (a resumed swap reads it):
    the task's digest, the segment's sha256, the frames' fingerprints and the preview rows."""
    strip = {f"strip_{i}_{side}": image for i, row in enumerate(result.strip) for side, image in zip("ab", row,
                                                                                                       strict=True)}
    with atomic_path(result.segment.with_suffix(".npz")) as tmp, tmp.open("wb") as f:
        np.savez(f, task=task, segment=sha256_file(result.segment), frames=result.frames, rows=len(result.strip),
                 thumbnails=np.asarray(result.thumbnails, np.uint8), **strip)


def load_render(task: RenderTask, segment: Path) -> ChunkRender | None:
    """The chunk as an earlier, interrupted run of the same swap rendered it, if it finished, its segment is
    intact and it would be rendered the same now; else None (render it again)."""
    saved = segment.with_suffix(".npz")
    if not (segment.is_file() and saved.is_file()):
        return None
    chunk = task.chunk
    try:
        with np.load(saved, allow_pickle=False) as data:
            if str(data["task"]) != task.digest() or str(data["segment"]) != sha256_file(segment):
                return None
            rows = int(data["rows"])
            strip = [(data[f"strip_{i}_a"], data[f"strip_{i}_b"]) for i in range(rows)]
            return ChunkRender(chunk, segment, int(data["frames"]), list(data["thumbnails"]), strip, {}, 0.0)
    except (OSError, ValueError, KeyError):
        return None  # damaged: render it again


def swap_video_chunked(job: SwapJob, input: Path, output: Path, chunks: Sequence[Chunk], pool: Pool,
                       resume: bool = False) -> SwapResult:
    """`pipeline.swap_video`, its two passes run chunk by chunk on `pool`. The rendered chunks wait in a
    folder beside the output until the output is signed; `resume` takes those an interrupted run of the same
    swap (input, model, options, chunks) finished, and renders the rest."""
    start = time.perf_counter()
    frames = chunks[-1].stop
    stored = stored_faces(job.ws, sha256_file(input))
    context = ScanContext(input.resolve(), job.model.resolution, job.model.face_type, job.options.cut_threshold,
                          job.options.max_faces, job.identity_reference)
    tasks = [ScanTask(c, {i: stored.get(i, []) for i in range(c.first, c.stop)} if stored else None) for c in chunks]
    with job.progress(total=frames, desc=f"find faces {input.name} ({len(chunks)} chunks, {pool.workers} workers)"
                      + (" (stored)" if stored else ""), unit="frame") as bar:
        parts = pool.map(scan_chunk, context, tasks, done=lambda _, part: bar.update(part.chunk.frames))
    scanned = time.perf_counter() - start
    footage = merge_footage(parts, job.options.cut_threshold)
    chosen = chosen_faces(job, footage, input)
    plan = job.plan(input, chosen.consent)
    previews = preview_frames(footage.frames, job.options.preview)
    output.parent.mkdir(parents=True, exist_ok=True)
    folder = ChunkFolder(output, _swap_key(job, input, chunks, chosen.consent.id))
    plan = folder.open(plan, resume)
    colors = fit_track_colors(job.model, chosen.tracks, job.options)
    context = RenderContext(input.resolve(), _portable(job.model), job.model.face_type, job.options, colors,
                            _portable(job.mask_model), job.hands, plan, job.video, folder.path.resolve())
    every = [RenderTask(c, {f: faces for f, faces in chosen.faces.items() if f in c},
                        frozenset(p for p in previews if p in c)) for c in chunks]
    try:
        renders, kept = _render(job, pool, context, every, folder, resume, input)
        with staging(output, "swap") as tmp:
            unsigned = tmp / f"unsigned{output.suffix.lower()}"
            join_segments([r.segment for r in renders], unsigned, audio_from=input)
            seal(unsigned, output, plan, job.signer)
    except (KeyboardInterrupt, WorkerLostError, DiskFullError):
        raise  # worth resuming: the chunks rendered so far stay for --resume
    except BaseException:
        folder.remove()  # a bad file or option fails the same way again: leave no marked, unsigned segments
        raise
    folder.remove()
    written = sum(r.frames for r in renders)
    marker = FrameMarker(plan, MediaKind.VIDEO)
    marker.recorder.kept = [t for r in renders for t in r.thumbnails]
    result = MarkResult.of(output, plan, MediaKind.VIDEO, written, marker)
    job.record(result, plan)
    strip = [row for r in renders for row in r.strip]
    preview = write_preview(job, strip, output, input, chosen.consent) if strip else None
    stages = _stages(parts, renders, scanned, time.perf_counter() - start)
    return SwapResult(input, output, MediaKind.VIDEO, written, len(chosen.faces), len(chosen.tracks),
                      len(footage.tracks), time.perf_counter() - start, plan.payload_hex, result.sha256, preview,
                      stages, probe(input).video.frames, 0, chosen.untouched,
                      job.notes + chosen.notes + (f"swapped in {len(chunks)} chunks on {pool.workers} workers",)
                      + (("rendered in GPU tasks, composited in CPU tasks",) if pool.apart else ())
                      + ((f"{kept} chunk(s) rendered by an interrupted run were kept",) if kept else ()))


def _render(job: SwapJob, pool: Pool, context: RenderContext, every: Sequence[RenderTask], folder: ChunkFolder,
            resume: bool, input: Path) -> tuple[list[ChunkRender], int]:
    """Pass 2: every chunk rendered into its segment on the pool, but those an interrupted run of the same
    swap finished (`resume`); the renders in chunk order, and how many were kept from before."""
    done = {t.chunk.index: r for t in every if resume and (r := load_render(t, folder.segment(t.chunk))) is not None}
    kept = len(done)
    tasks = [t for t in every if t.chunk.index not in done]
    with job.progress(total=every[-1].chunk.stop, desc=f"swap {input.name} ({len(every)} chunks"
                      + (f", {kept} done before" if kept else "") + ")", unit="frame") as bar:
        bar.update(sum(r.frames for r in done.values()))
        if pool.apart:  # the model's work in GPU tasks, without the rest; the rest in CPU tasks, on the CPU
            cpu = dataclasses.replace(context, model=None, options=dataclasses.replace(context.options, device="cpu"))
            renders = pool.chain((render_faces, dataclasses.replace(context, mask_model=None)), (composite_chunk, cpu),
                                 tasks, done=lambda _, r: bar.update(r.frames))
        else:
            renders = pool.map(render_chunk, context, tasks, done=lambda _, r: bar.update(r.frames))
        for render in renders:
            done[render.chunk.index] = render
    return [done[t.chunk.index] for t in every], kept


class ChunkFolder:
    """Where the rendered chunks of one swap wait for the join: `.NAME.chunks/` beside the output, with the
    swap's key and watermark id in `swap.json` (a resumed run must mark its frames with the same id)."""

    def __init__(self, output: Path, key: dict):
        self.path = output.parent / f".{output.name}.chunks"
        self.key = key

    def segment(self, chunk: Chunk) -> Path:
        return self.path / f"chunk_{chunk.index:04d}.mp4"

    def open(self, plan: MarkPlan, resume: bool) -> MarkPlan:
        """The plan to render with: the earlier run's watermark id when resuming the same swap; otherwise the
        folder starts empty."""
        saved = self.path / "swap.json"
        if resume and saved.is_file():
            try:
                earlier = json.loads(saved.read_text())
            except (OSError, ValueError):
                earlier = {}
            if earlier.get("key") == self.key and isinstance(earlier.get("payload"), int):
                return dataclasses.replace(plan, payload=earlier["payload"])
        self.remove()
        self.path.mkdir(parents=True)
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps({"key": self.key, "payload": plan.payload}))
        return plan

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _swap_key(job: SwapJob, input: Path, chunks: Sequence[Chunk], target_consent: str) -> dict:
    """What decides a chunk's pixels and its provenance, bar the faces (each chunk's digest has those): the
    input, the model and mask model, the options (bar where they run), the consents, the chunks, the version."""
    return {"input": sha256_file(input), "model": job.model.sha256, "options": made_by(job.options),
            "mask_model": job.mask_model.sha256 if job.mask_model else None, "hands": job.hands,
            "consents": [job.source_consent.id, target_consent], "marking": to_dict(job.marking),
            "video": to_dict(job.video), "chunks": [[c.first, c.frames] for c in chunks],
            "version": __version__}


def _stages(parts: Sequence[ChunkFootage], renders: Sequence[ChunkRender], scanned: float,
            seconds: float) -> dict[str, float]:
    """Wall seconds of the two passes, and the workers' seconds per stage summed over the chunks (with N
    workers these add up to about N times the wall time)."""
    stages = {"find faces (wall)": scanned, "render, mark, encode (wall)": seconds - scanned}
    checks = sum(p.check_seconds for p in parts)
    stages["workers: find faces"] = sum(p.seconds for p in parts) - checks
    stages["workers: identity checks"] = checks
    for render in renders:
        for name, value in render.stages.items():
            stages[f"workers: {name}"] = stages.get(f"workers: {name}", 0.0) + value
    stages["workers: decode, mark, encode"] = sum(r.seconds - sum(r.stages.values()) for r in renders)
    return stages
