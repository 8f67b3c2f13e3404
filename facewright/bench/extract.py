"""`facewright bench extract`: end-to-end extraction speed on a sample video, with the time per stage."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from facewright.collect.extract import STAGES, extract
from facewright.config import ExtractOptions
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


def bench_extract(video: Path, options: ExtractOptions = ExtractOptions(),
                  progress: ProgressFactory = no_progress) -> ExtractBench:
    """Extract every frame of `video` into a throw-away workspace and time it."""
    with tempfile.TemporaryDirectory(prefix="facewright-bench-") as tmp, Workspace.init(tmp) as ws:
        report = extract([video], "bench", ws, options, progress)
    [source] = report.sources
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return ExtractBench(video.name, source.frames, source.kept, report.seconds, report.stage_seconds, cpus)
