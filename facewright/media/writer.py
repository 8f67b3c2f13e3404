"""Writing video: H.264 (or H.265) MP4/MOV, yuv420p, input timestamps and audio kept, written atomically."""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facewright.config import VideoOptions
from facewright.errors import UnsupportedFormatError
from facewright.files import atomic_path, check_output, disk_full, disk_full_error
from facewright.media.audio import AudioPassthrough
from facewright.media.image import Frame

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}  # C2PA signs MP4/MOV, not MKV/WebM


def pad_to_even(image: Frame) -> Frame:
    """yuv420p needs even width and height: repeat the last row/column where a size is odd."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


class VideoWriter:
    """Encode RGB frames into a video file; appears at `path` only after `close()` succeeds.

    `time_base` is the unit of the pts given to `write` (pass the input stream's to keep its timestamps
    exactly); `audio_from` names a file whose first audio stream is copied in. Use as a context manager:
    on an exception the partial file is removed and nothing appears at `path`.
    """

    def __init__(self, path: str | Path, *, width: int, height: int, fps: Fraction | float,
                 time_base: Fraction | None = None, options: VideoOptions = VideoOptions(),
                 audio_from: str | Path | None = None, inputs: Sequence[str | Path] = ()):
        self.path = check_output(path, [*inputs, *([audio_from] if audio_from else [])])
        container_format = CONTAINERS.get(self.path.suffix.lower())
        if container_format is None:
            raise UnsupportedFormatError(f"cannot write {self.path.suffix or 'suffix-less'} video", path=self.path,
                                         fix=f"use one of {', '.join(CONTAINERS)} (provenance needs MP4/MOV)")
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.time_base = time_base or 1 / self.fps
        self.width, self.height = width, height
        self.frames_written = 0
        self.audio: AudioPassthrough | None = None
        self.container: av.container.OutputContainer | None = None
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        try:
            self.container = av.open(str(self._tmp), "w", format=container_format)
            self.stream = self._add_video_stream(options)
            if audio_from is not None and AudioPassthrough.has_audio(audio_from):
                self.audio = AudioPassthrough(audio_from, self.container)
        except BaseException:
            self.abort()  # a failed open or a bad audio source must not leave a partial file behind
            raise

    def _add_video_stream(self, options: VideoOptions) -> av.video.stream.VideoStream:
        stream = self.container.add_stream(options.codec, rate=self.fps)
        stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        stream.options = {"crf": str(options.crf), "preset": options.preset}
        stream.codec_context.thread_type = "FRAME"  # x264 frame threads: ~30% faster than PyAV's slice default
        if options.codec == "libx265":
            stream.codec_tag = "hvc1"  # plays in QuickTime and browsers
            stream.options["x265-params"] = "log-level=error"
        return stream

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, *rest: object) -> None:
        if exc_type is None:
            try:
                self.close()
            except Exception as error:  # flushing the encoder writes too: a full disk shows up here as well
                self.abort()
                self._raise_disk_full(error)
                raise
        else:
            self.abort()
            self._raise_disk_full(exc)

    def _raise_disk_full(self, exc: BaseException | None) -> None:
        """DiskFullError naming the file in place of FFmpeg's bare "No space left on device" (the partial is gone)."""
        if exc is not None and disk_full(exc):
            raise disk_full_error(self.path) from exc

    def write(self, image: Frame, pts: int | None = None) -> None:
        """Encode one H x W x 3 RGB uint8 frame at `pts` (in time_base units; default: the next frame slot)."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, the writer {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(pad_to_even(np.ascontiguousarray(image)), format="rgb24")
        frame.pts = pts if pts is not None else round(self.frames_written / (self.fps * self.time_base))
        frame.time_base = self.time_base
        self.container.mux(self.stream.encode(frame))
        self.frames_written += 1
        if self.audio is not None:
            self.audio.mux_until(float(frame.pts * self.time_base))

    def close(self) -> Path:
        """Flush the encoder, finish the audio, and move the file into place."""
        self.container.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.finish()
        self.container.close()
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop the partial file; nothing appears at `path`."""
        if self.audio is not None:
            self.audio.close()
        try:
            if self.container is not None:
                self.container.close()
        except av.error.FFmpegError:
            pass  # an unfinished stream cannot always be finalized; the file is deleted anyway
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
