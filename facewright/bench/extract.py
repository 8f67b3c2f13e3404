"""`facewright bench extract`: end-to-end extraction speed on a sample video, with the time per stage, for
one worker and more (chunks on a process pool), beside the bare single-thread floor measured in the same run.

The floor is what one thread needs for the unavoidable part of extraction: decode (no decoder threads), the
landmark model in video mode, align and JPEG-encode each face; no scoring, identity, de-duplication,
catalog or PNG. Speeds are noisy on a shared machine, so each figure is set against the others of its run.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import cv2

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.collect.extract import STAGES, extract
from facewright.config import ExtractOptions, build
from facewright.faces.align import align_face
from facewright.faces.landmarks import Landmarker
from facewright.media.image import encode_image
from facewright.media.video import VideoReader
from facewright.progress import ProgressFactory, no_progress
from facewright.workers import cores
from facewright.workspace import Workspace


@dataclass(frozen=True)
class ExtractBench:
    video: str
    frames: int
    faces_kept: int
    seconds: float
    stage_seconds: dict[str, float]
    cpus: int
    workers: int = 1

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def rows(self) -> list[str]:
        lines = [f"{self.video}, {self.workers} worker(s): {self.frames} frames in {self.seconds:.1f} s = "
                 f"{self.fps:.1f} frames/s end to end ({self.faces_kept} faces kept, {self.cpus} CPU cores)",
                 "  (decode + landmarks run in a thread beside the rest, and workers side by side, so the stage "
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
        report = extract([path], "bench", ws, build(ExtractOptions, flags={**options, "workers": workers}), progress)
    [clip] = report.inputs
    return ExtractBench(path.name, clip.frames, clip.kept, report.seconds, report.stage_seconds, cores(), workers)


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


def scaling_rows(floor: Floor, runs: list[ExtractBench]) -> list[str]:
    """Each run's frames/s against one worker's and against the floor, measured in the same run."""
    one = next((r for r in runs if r.workers == 1), None)
    rows = [floor.row()]
    for run in runs:
        rows.append(f"{run.workers} worker(s): {run.fps:.1f} frames/s = {run.fps / floor.fps:.2f} x the floor"
                    + (f", {run.fps / one.fps:.2f} x one worker" if one is not None and run is not one else ""))
    return rows
