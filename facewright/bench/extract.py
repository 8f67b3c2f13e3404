"""`facewright bench extract`: end-to-end extraction speed on a sample video, with the time per stage."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.collect.extract import STAGES, extract
from facewright.config import ExtractOptions, build
from facewright.progress import ProgressFactory, no_progress
from facewright.workspace import Workspace


@dataclass(frozen=True)
class ExtractBench:
    video: str
    frames: int
    faces_kept: int
    seconds: float
    stage_seconds: dict[str, float]
    cpus: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def rows(self) -> list[str]:
        lines = [f"{self.video}: {self.frames} frames in {self.seconds:.1f} s = {self.fps:.1f} frames/s end to end "
                 f"({self.faces_kept} faces kept, {self.cpus} CPU cores)",
                 "  (decode + landmarks run in a thread beside the rest, so the stage shares add up past 100%)"]
        for stage in STAGES:
            seconds = self.stage_seconds[stage]
            lines.append(f"  {stage:<10} {seconds:6.2f} s  {1000 * seconds / self.frames:6.2f} ms/frame  "
                         f"{100 * seconds / self.seconds:5.1f}%")
        return lines


def bench_extract(video: str = SAMPLE_A, *, progress: ProgressFactory = no_progress,
                  **options: object) -> ExtractBench:
    """Extract every frame of the registered sample `video` into a throw-away workspace and time it.

    `options`: ExtractOptions fields. The stage's own code is timed (no consent check: the workspace holds no
    one's faces beyond the run).
    """
    path = api.asset(video)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-") as tmp, Workspace.init(tmp) as ws:
        report = extract([path], "bench", ws, build(ExtractOptions, flags=options), progress)
    [clip] = report.inputs
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return ExtractBench(path.name, clip.frames, clip.kept, report.seconds, report.stage_seconds, cpus)
