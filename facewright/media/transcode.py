"""Decode -> (optional per-frame function) -> encode, keeping timestamps and audio: the media frame loop."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from facewright.config import VideoOptions
from facewright.media.image import Frame
from facewright.media.segments import Chunk, read_chunk
from facewright.media.video import VideoFrame, VideoReader, probe
from facewright.media.writer import VideoWriter
from facewright.prefetch import Behind, prefetch
from facewright.progress import ProgressFactory, no_progress


@dataclass(frozen=True)
class TranscodeResult:
    output: Path
    frames: int  # frames written: the frames of the input that could be decoded
    seconds: float
    corrupt_packets: int
    audio_copied: bool
    input_frames: int | None = None  # the frames the input holds (probe's count of its video packets)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def frames_lost(self) -> int:
        """Input frames that could not be decoded (a damaged stream), so are missing from the output."""
        return max(0, (self.input_frames or 0) - self.frames)


def transcode(source: str | Path, output: str | Path, *, options: VideoOptions = VideoOptions(),
              frame_fn: Callable[[VideoFrame], Frame] | None = None,
              batch_fn: Callable[[list[VideoFrame]], list[Frame]] | None = None, batch: int = 1,
              progress: ProgressFactory = no_progress) -> TranscodeResult:
    """Re-encode `source` into `output` frame by frame (through `frame_fn` if given), audio kept.

    `batch_fn` instead maps lists of up to `batch` consecutive frames at once (a model on a GPU wants
    batches). Same frame count and pts as the source; nothing appears at `output` unless every frame was
    written.
    """
    if batch_fn is not None and frame_fn is not None:
        raise ValueError("give frame_fn or batch_fn, not both")
    info = probe(source)
    start = time.perf_counter()
    with VideoReader(source) as reader, progress(total=info.video.frames if info.video else None,
                                                  desc=f"encode {Path(source).name}", unit="frame") as bar:
        first = info.video
        with VideoWriter(output, width=first.width, height=first.height, fps=reader.fps or 30,
                         time_base=reader.time_base, options=options, audio_from=source,
                         inputs=[source]) as writer:
            # decoding runs ahead in a thread, encoding behind in another: the frames in between use this one
            with Behind(lambda done: _write(writer, *done)) as encoder:
                for frames in prefetch(batches(reader, max(1, batch) if batch_fn else 1), depth=2):
                    images = batch_fn(frames) if batch_fn else [frame_fn(f) if frame_fn else f.image for f in frames]
                    encoder.put((frames, images))
                    bar.update(len(frames))
            audio = writer.audio is not None
    return TranscodeResult(Path(output), reader.decoded, time.perf_counter() - start,
                           reader.corrupt_packets, audio, first.frames if first else None)


def transcode_chunk(source: str | Path, chunk: Chunk, output: str | Path, *, options: VideoOptions,
                    batch_fn: Callable[[list[VideoFrame]], list[Frame]], batch: int = 1,
                    done: Callable[[int], None] | None = None) -> int:
    """`transcode` of one chunk of `source` into `output`, video only (`segments.join_segments` adds the
    audio to the joined whole): the same timestamps and encoder settings, so the chunks join without a
    re-encode. The frames written; `done(n)` after each batch of n."""
    with VideoReader(source) as reader:  # the rate and time base exactly as `transcode` takes them
        fps, time_base = reader.fps or 30, reader.time_base
    first = probe(source).video
    with VideoWriter(output, width=first.width, height=first.height, fps=fps, time_base=time_base,
                     options=options, inputs=[source]) as writer:
        with Behind(lambda done: _write(writer, *done)) as encoder:
            for frames in prefetch(batches(read_chunk(source, chunk), max(1, batch)), depth=2):
                encoder.put((frames, batch_fn(frames)))
                if done is not None:
                    done(len(frames))
        return writer.frames_written


def _write(writer: VideoWriter, frames: list[VideoFrame], images: list[Frame]) -> None:
    for frame, image in zip(frames, images, strict=True):
        writer.write(image, frame.pts)


def batches(frames: Iterable[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    """Lists of `size` consecutive frames (the last may be shorter); itertools.batched needs Python 3.12."""
    frames = iter(frames)
    while chunk := list(islice(frames, size)):
        yield chunk
