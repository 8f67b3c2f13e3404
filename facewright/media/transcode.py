"""Decode -> (optional per-frame function) -> encode, keeping timestamps and audio: the media frame loop."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facewright.config import VideoOptions
from facewright.media.image import Frame
from facewright.media.video import VideoFrame, VideoReader, probe
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress


@dataclass(frozen=True)
class TranscodeResult:
    output: Path
    frames: int
    seconds: float
    corrupt_packets: int
    audio_copied: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def transcode(source: str | Path, output: str | Path, *, options: VideoOptions = VideoOptions(),
              frame_fn: Callable[[VideoFrame], Frame] | None = None,
              progress: ProgressFactory = no_progress) -> TranscodeResult:
    """Re-encode `source` into `output` frame by frame (through `frame_fn` if given), audio kept.

    Same frame count and pts as the source; nothing appears at `output` unless every frame was written.
    """
    info = probe(source)
    start = time.perf_counter()
    with VideoReader(source) as reader, progress(total=info.video.frames if info.video else None,
                                                  desc=f"encode {Path(source).name}", unit="frame") as bar:
        first = info.video
        with VideoWriter(output, width=first.width, height=first.height, fps=reader.fps or 30,
                         time_base=reader.time_base, options=options, audio_from=source,
                         inputs=[source]) as writer:
            for frame in reader:
                writer.write(frame_fn(frame) if frame_fn else frame.image, frame.pts)
                bar.update(1)
            audio = writer.audio is not None
    return TranscodeResult(Path(output), reader.decoded, time.perf_counter() - start,
                           reader.corrupt_packets, audio)
