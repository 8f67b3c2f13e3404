"""`facewright bench all`: every speed benchmark, then the quality row, one after another."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facewright.bench.extract import bench_extract
from facewright.bench.io import bench_io
from facewright.bench.quality import bench_quality, quality_preset
from facewright.bench.swap import bench_swap
from facewright.bench.train import bench_train
from facewright.progress import ProgressFactory, no_progress


def bench_all(*, preset: str = "cpu", device: str = "auto", results: str | Path | None = None,
              workspace: str | Path | None = None,
              progress: ProgressFactory = no_progress) -> Iterator[tuple[str, list[str]]]:
    """io, extract, train and swap speed, then the quality row: (benchmark, its printed lines), one at a time."""
    yield "io", [row.row() for row in bench_io(progress=progress)]
    yield "extract", bench_extract(progress=progress).rows()
    train_preset = quality_preset(preset, None, None)[0]
    yield "train", [bench_train(preset=train_preset, device=device, progress=progress).row()]
    yield "swap", [row.row() for row in bench_swap(device=device, progress=progress)[0]]
    yield "quality", [row.row() for row in bench_quality(preset=preset, device=device, results=results,
                                                         workspace=workspace, progress=progress)]
