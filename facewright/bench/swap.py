"""`facewright bench swap`: frames/s end to end (decode -> find faces -> model -> post -> mark -> encode ->
sign) and the time per stage, at 640x360 and 1280x720.

It builds what a swap needs in a temporary workspace, as `make demo` does: demo-scoped consents for the two
people in the sample clips, a faceset of each, and a model of the demo preset's architecture (trained for
a few steps only: the speed of a model does not depend on how well it is trained). The footage is
person B's sample clip (640x360, 72 frames, with audio) and the same clip upscaled to 1280x720.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2

from facewright import api
from facewright.bench import SAMPLE_A, SAMPLE_B
from facewright.config import VideoOptions
from facewright.demo import demo_consent
from facewright.media.video import VideoReader
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress
from facewright.timing import CpuClock
from facewright.train.distributed import Dist, pick_device
from facewright.workers import cores

SIZES = ((640, 360), (1280, 720))
GPU_SIZES = (*SIZES, (1920, 1080))  # on a GPU also full HD, the size a studio swaps


@dataclass(frozen=True)
class SwapBench:
    width: int
    height: int
    frames: int
    device: str
    frames_per_second: float
    stages: dict[str, float]  # milliseconds per frame

    def row(self) -> str:
        stages = ", ".join(f"{name} {ms:.1f}" for name, ms in self.stages.items())
        return (f"{self.width}x{self.height}, {self.frames} frames on {self.device}: {self.frames_per_second:.1f} "
                f"frames/s end to end; ms per frame: {stages}")


def scaled_copy(source: Path, output: Path, width: int, height: int) -> Path:
    """`source` resized to width x height (same timestamps, audio copied)."""
    with VideoReader(source) as reader, VideoWriter(output, width=width, height=height, fps=reader.fps or 30,
                                                    time_base=reader.time_base, audio_from=source,
                                                    options=VideoOptions(crf=18, preset="veryfast")) as writer:
        for frame in reader:
            writer.write(cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_CUBIC), frame.pts)
    return output


def looped_copy(source: Path, output: Path, loops: int = 3, keyframe_every: int = 60) -> Path:
    """`source` forwards then backwards, `loops` times (no cut anywhere), a keyframe every `keyframe_every`
    frames, its audio: a longer shot of the same person, to split into chunks."""
    with VideoReader(source) as reader:
        frames = [f.image for f in reader]
        fps = reader.fps or 30
    height, width = frames[0].shape[:2]
    with VideoWriter(output, width=width, height=height, fps=fps, audio_from=source,
                     options=VideoOptions(crf=18, preset="veryfast")) as writer:
        writer.stream.options = {**writer.stream.options, "g": str(keyframe_every)}
        for _ in range(loops):
            for image in frames + frames[::-1]:
                writer.write(image)
    return output


@dataclass(frozen=True)
class WorkersBench:
    """One swap of a long clip on N workers."""

    workers: int
    frames: int
    seconds: float
    chunks: int
    busy: float = 0.0  # cores kept busy on average: CPU seconds of the driver and its workers / wall seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def workers_rows(runs: list[WorkersBench]) -> list[str]:
    """Each run's frames/s, and against one worker's; the cores each kept busy say how much room the cores
    left: one worker that keeps 1.5 of 2 cores busy can at most be beaten 2 / 1.5 times for the same work."""
    one = next((r for r in runs if r.workers == 1), None)
    return [f"{r.workers} worker(s), {r.chunks} chunk(s): {r.frames} frames in {r.seconds:.1f} s = {r.fps:.1f} "
            f"frames/s" + (f" = {r.fps / one.fps:.2f} x one worker" if one is not None and r is not one else "")
            + f", {r.busy:.2f} of {cores()} cores busy" for r in runs]


def bench_swap(*, device: str = "auto", workers: tuple[int, ...] = (), progress: ProgressFactory = no_progress
               ) -> tuple[list[SwapBench], list[WorkersBench]]:
    """Swap frames/s end to end and ms per stage at 640x360 and 1280x720 (a demo-preset model, sample clips),
    each in one process; then, for each of `workers`, the swap of B's clip looped to 14 s (two or more chunks)
    on that many worker processes, start-up included."""
    video_a, video_b = api.asset(SAMPLE_A), api.asset(SAMPLE_B)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-swap-") as tmp:
        root = Path(tmp) / "ws"
        demo_consent(root, video_a, "bench-a"), demo_consent(root, video_b, "bench-b")
        api.extract([video_a], "bench-a", workspace=root, every=3, dedupe=0, size=64, progress=progress)
        api.extract([video_b], "bench-b", workspace=root, dedupe=0, size=64, progress=progress)
        api.train("bench-a", "bench-b", name="bench", preset="demo", steps=2, preview_every=0, workspace=root,
                  device=device, progress=progress)
        api.swap(video_b, Path(tmp) / "warm-up.mp4", model="bench", workspace=root, device=device)  # untimed:
        # the first model calls and encoder set-up cost extra once per process, not per frame
        rows = []
        place = pick_device(device, Dist())
        where = str(place)
        for width, height in GPU_SIZES if place.type == "cuda" else SIZES:
            clip = video_b if width == 640 else scaled_copy(video_b, Path(tmp) / f"b-{width}.mp4", width, height)
            [result] = api.swap(clip, Path(tmp) / f"out-{width}.mp4", model="bench", workspace=root, device=device,
                                workers=1, progress=progress)
            per_frame = {k: 1000 * v / result.frames for k, v in result.stages.items()}
            rows.append(SwapBench(width, height, result.frames, where, result.fps, per_frame))
        long = looped_copy(video_b, Path(tmp) / "b-long.mp4") if workers else None
        scaling = []
        for count in workers:
            with CpuClock() as clock:  # the pool is closed (its workers ended) inside swap: their CPU counts
                [result] = api.swap(long, Path(tmp) / f"long-{count}.mp4", model="bench", workspace=root,
                                    device=device, workers=count, progress=progress)
            chunks = next((int(n.split()[2]) for n in result.notes if n.startswith("swapped in ")), 1)
            scaling.append(WorkersBench(count, result.frames, result.seconds, chunks, clock.cores))
        return rows, scaling
