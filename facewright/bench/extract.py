"""`facewright bench extract`: end-to-end extraction speed on a sample video, with the time per stage and the
cores it kept busy, for one worker and more (chunks on a process pool), beside two references measured in the
same run: the bare single-thread floor, and the ceiling of a pool on this machine.

The floor is what one thread needs for the unavoidable part of extraction: decode (no decoder threads), the
landmark model in video mode, align and JPEG-encode each face; no scoring, identity, de-duplication,
catalog or PNG. The ceiling is the pool's own chunk work with nothing around it: one process per chunk,
started and warm, all let go at once, against the same work in one process. A pool cannot beat it (it adds
start-up, hand-offs and the driver's share); how far one worker's own threads already fill the cores sets it.
Speeds are noisy on a shared machine, so each figure is set against the others of its run.
"""
from __future__ import annotations

import multiprocessing
import queue
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.collect.chunks import ChunkContext, extract_chunk, extract_chunks
from facewright.collect.extract import STAGES, extract
from facewright.config import ExtractOptions, build
from facewright.errors import WorkerLostError
from facewright.faces.align import align_face
from facewright.faces.landmarks import Landmarker
from facewright.media.image import encode_image
from facewright.media.segments import Chunk
from facewright.media.video import VideoReader, probe
from facewright.progress import ProgressFactory, no_progress
from facewright.timing import CpuClock
from facewright.workers import cores, one_thread_worker
from facewright.workspace import Workspace

WARM_FRAMES = 24  # a process's first chunk loads its models: the ceiling's processes run this many frames first


@dataclass(frozen=True)
class ExtractBench:
    video: str
    frames: int
    faces_kept: int
    seconds: float
    stage_seconds: dict[str, float]
    cpus: int
    workers: int = 1
    busy: float = 0.0  # cores kept busy on average: CPU seconds of the driver and its workers / wall seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def rows(self) -> list[str]:
        lines = [f"{self.video}, {self.workers} worker(s): {self.frames} frames in {self.seconds:.1f} s = "
                 f"{self.fps:.1f} frames/s end to end ({self.faces_kept} faces kept, {self.busy:.2f} of "
                 f"{self.cpus} CPU cores busy)",
                 "  (decode, landmarks and the rest run in threads side by side, and workers too, so the stage "
                 "shares add up past 100%)"]
        for stage in STAGES:
            seconds = self.stage_seconds[stage]
            lines.append(f"  {stage:<10} {seconds:6.2f} s  {1000 * seconds / self.frames:6.2f} ms/frame  "
                         f"{100 * seconds / self.seconds:5.1f}%")
        return lines


@dataclass(frozen=True)
class Floor:
    """The bare single-thread floor of extraction on one video (see the module docstring)."""

    frames: int
    faces: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def row(self) -> str:
        return (f"bare single-thread floor (decode + landmarks + align + JPEG, nothing else): {self.frames} frames "
                f"in {self.seconds:.1f} s = {self.fps:.1f} frames/s")


def bench_extract(video: str = SAMPLE_A, *, workers: int = 1, progress: ProgressFactory = no_progress,
                  **options: object) -> ExtractBench:
    """Extract every frame of the registered sample `video` into a throw-away workspace and time it, on
    `workers` processes (1: this one).

    `options`: ExtractOptions fields. The stage's own code is timed (no consent check: the workspace holds no
    one's faces beyond the run). With workers, the time includes starting them (imports, models).
    """
    path = api.asset(video)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-") as tmp, Workspace.init(tmp) as ws:
        with CpuClock() as clock:  # the pool is closed (its workers ended) inside extract: their CPU counts
            report = extract([path], "bench", ws, build(ExtractOptions, flags={**options, "workers": workers}),
                             progress)
    [clip] = report.inputs
    return ExtractBench(path.name, clip.frames, clip.kept, report.seconds, report.stage_seconds, cores(), workers,
                        clock.cores)


def extraction_floor(video: str = SAMPLE_A, *, size: int = 256, face_type: str = "whole_face") -> Floor:
    """Decode (one thread), landmarks (video mode), align and JPEG-encode every face of `video`, timed."""
    path = api.asset(video)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        start, frames, faces = time.perf_counter(), 0, 0
        with VideoReader(path, threads=False) as reader, Landmarker(video=True) as landmarker:
            for frame in reader:
                for face in landmarker.detect(frame.image, frame.time * 1000):
                    aligned = align_face(frame.image, face.points68(), size=size, face_type=face_type)
                    encode_image(aligned.image, "face.jpg", quality=95)
                    faces += 1
                frames += 1
        return Floor(frames, faces, time.perf_counter() - start)
    finally:
        cv2.setNumThreads(threads)


@dataclass(frozen=True)
class Ceiling:
    """A pool's chunk work with nothing around it (see the module docstring): each chunk's frames and seconds
    in a process of its own, all at once, and the seconds of the same chunks' work in one process."""

    frames: tuple[int, ...]
    seconds: tuple[float, ...]
    one_process: float

    @property
    def workers(self) -> int:
        return len(self.frames)

    @property
    def fps(self) -> float:
        return sum(self.frames) / max(self.seconds)

    @property
    def ratio(self) -> float:
        """How many times the speed of one process: the most a pool of `workers` reaches here."""
        return self.one_process / max(self.seconds)

    def row(self) -> str:
        return (f"ceiling of {self.workers} workers ({self.workers} processes already warm, each on one chunk of "
                f"{' + '.join(map(str, self.frames))} frames at once, chunk work only): {self.fps:.1f} frames/s = "
                f"{self.ratio:.2f} x the same work in one process")


def extraction_ceiling(video: str = SAMPLE_A, *, workers: int = 2) -> Ceiling | None:
    """The ceiling of a pool of `workers` on the registered sample `video`, in the chunks that pool would
    make (None: the video is too short to split)."""
    path = api.asset(video)
    return chunks_ceiling(path, extract_chunks(path, probe(path), workers))


def chunks_ceiling(path: Path, chunks: list[Chunk], options: ExtractOptions = ExtractOptions(),
                   timeout: float = 600.0) -> Ceiling | None:
    """`chunks` of `path` extracted at once, a process each (started, one thread per library like a pool's
    worker, and warmed on their chunk's first frames before a common start), and then one after another in
    this process with its usual threads, as one worker runs them. None for a single chunk."""
    if len(chunks) < 2:
        return None
    context = ChunkContext(path.resolve(), options, 1, "ceiling")
    extract_chunk(context, _head(chunks[0]))  # this process's models loaded, as the processes' are
    start = time.perf_counter()
    for chunk in chunks:
        extract_chunk(context, chunk)
    one_process = time.perf_counter() - start
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Barrier(len(chunks)), spawn.Queue()
    processes = {chunk.index: spawn.Process(target=_ceiling_chunk, args=(context, chunk, ready, results, timeout),
                                            daemon=True) for chunk in chunks}
    try:
        for process in processes.values():
            process.start()
        timed = _gather(processes, results, path, timeout)
    finally:
        for process in processes.values():
            if process.pid is None:
                continue  # never started
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()  # reaped: no zombie, and its CPU counts in a CpuClock around this
    return Ceiling(tuple(timed[c.index][0] for c in chunks), tuple(timed[c.index][1] for c in chunks), one_process)


def _head(chunk: Chunk) -> Chunk:
    return replace(chunk, frames=min(WARM_FRAMES, chunk.frames))


def _ceiling_chunk(context: ChunkContext, chunk: Chunk, ready: object, results: object, timeout: float) -> None:
    """A ceiling process: warm up, wait for the others, then time the chunk; its frames and seconds (or the
    error that stopped it) go to `results`."""
    try:
        one_thread_worker()
        extract_chunk(context, _head(chunk))
        ready.wait(timeout)
        start = time.perf_counter()
        part = extract_chunk(context, chunk)
        results.put((chunk.index, part.frames, time.perf_counter() - start))
    except Exception as exc:  # reported to the bench, which raises it there
        results.put((chunk.index, None, f"{type(exc).__name__}: {exc}"))
        ready.abort()  # after the report: the others' BrokenBarrierError must not be the first error read


def _gather(processes: dict[int, Any], results: Any, path: Path, timeout: float) -> dict[int, tuple[int, float]]:
    """Each chunk's (frames, seconds) from the ceiling's processes (by chunk index); WorkerLostError when one
    fails (its own error, not the BrokenBarrierError it caused in the others) or dies before it reports."""
    timed: dict[int, tuple[int, float]] = {}
    deadline = time.monotonic() + 2 * timeout
    while len(timed) < len(processes):
        try:
            index, frames, seconds = results.get(timeout=1.0)
        except queue.Empty:
            waiting = [p for i, p in processes.items() if i not in timed]
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in waiting):
                raise WorkerLostError("a process of the ceiling measurement died before it reported", path=path,
                                      fix="run the bench again; if it recurs, check memory (dmesg)") from None
            continue
        if frames is None:
            raise WorkerLostError(f"a process of the ceiling measurement failed: {seconds}", path=path,
                                  fix="run `facewright extract --workers 1` on the file to see the error")
        timed[index] = (frames, seconds)
    return timed


def scaling_rows(floor: Floor, runs: list[ExtractBench], ceiling: Ceiling | None = None) -> list[str]:
    """Each run's frames/s against one worker's and against the floor, measured in the same run; with the
    `ceiling`, how much of it the pool of as many workers reaches."""
    one = next((r for r in runs if r.workers == 1), None)
    rows = [floor.row()] + ([ceiling.row()] if ceiling is not None else [])
    for run in runs:
        row = f"{run.workers} worker(s): {run.fps:.1f} frames/s = {run.fps / floor.fps:.2f} x the floor"
        if one is not None and run is not one:
            row += f", {run.fps / one.fps:.2f} x one worker"
            if ceiling is not None and ceiling.workers == run.workers:  # the most this ratio can reach here
                row += (f", {run.fps / ceiling.fps:.0%} of the ceiling ({ceiling.fps:.1f} frames/s = "
                        f"{ceiling.fps / one.fps:.2f} x one worker)")
        rows.append(row)
    return rows
