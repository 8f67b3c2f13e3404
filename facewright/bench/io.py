"""`facewright bench io`: video decode and encode speed at the sizes the pipeline meets."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.config import VideoOptions
from facewright.errors import OptionError
from facewright.media.image import Frame
from facewright.media.video import VideoReader
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress


@dataclass(frozen=True)
class IoResult:
    width: int
    height: int
    frames: int
    decode_fps: float  # H.264 -> RGB uint8 arrays, all decoder threads
    encode_fps: dict[str, float]  # preset -> RGB arrays -> H.264 yuv420p crf 18

    def row(self) -> str:
        encodes = "  ".join(f"encode {p} {v:7.1f}" for p, v in self.encode_fps.items())
        return f"{self.width}x{self.height}  frames {self.frames}  decode {self.decode_fps:7.1f}  {encodes}  (frames/s)"


def bench_io(video: Path | None = None, *, sizes: Sequence[tuple[int, int]] = ((640, 360), (1280, 720)),
             frames: int = 120, presets: Sequence[str] = ("medium", "veryfast"),
             progress: ProgressFactory = no_progress) -> list[IoResult]:
    """Time decoding and encoding `frames` frames of real footage (`video`, default the sample clip of person A,
    resized) at each size."""
    check_bench_options(frames, sizes)
    video = video or api.asset(SAMPLE_A)
    with VideoReader(video) as reader:
        originals = [f.image for f in islice(reader, frames)]
    results = []
    with tempfile.TemporaryDirectory(prefix="facewright-bench-") as tmp:
        for width, height in sizes:
            clip = [_resize(image, width, height) for image in originals]
            path = Path(tmp) / f"clip_{width}x{height}.mp4"
            _encode(clip, path, "veryfast")  # the decode test's input; not timed
            with progress(total=1 + len(presets), desc=f"bench io {width}x{height}", unit="test") as bar:
                decode_fps = _time_decode(path)
                bar.update(1)
                encode_fps = {}
                for preset in presets:
                    encode_fps[preset] = len(clip) / _encode(clip, Path(tmp) / f"enc_{preset}.mp4", preset)
                    bar.update(1)
            results.append(IoResult(width, height, len(clip), decode_fps, encode_fps))
    return results


def check_bench_options(frames: int, sizes: Sequence[Sequence[int]]) -> None:
    """Refuse a frame count or sizes no benchmark can run with (OptionError: the user's input, exit 2)."""
    if frames < 1:
        raise OptionError(f"--frames {frames}: a benchmark needs at least 1 frame", fix="e.g. --frames 120")
    for size in sizes:
        if len(size) != 2 or min(size) < 1:
            raise OptionError(f"--sizes: {'x'.join(map(str, size))} is not a WIDTHxHEIGHT of positive numbers",
                              fix="e.g. --sizes 640x360,1280x720")


def _resize(image: Frame, width: int, height: int) -> Frame:
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def _encode(clip: list[Frame], path: Path, preset: str) -> float:
    start = time.perf_counter()
    height, width = clip[0].shape[:2]
    with VideoWriter(path, width=width, height=height, fps=Fraction(30),
                     options=VideoOptions(preset=preset)) as writer:
        for image in clip:
            writer.write(image)
    return time.perf_counter() - start


def _time_decode(path: Path) -> float:
    start = time.perf_counter()
    with VideoReader(path) as reader:
        count = sum(1 for _ in reader)
    return count / (time.perf_counter() - start)
