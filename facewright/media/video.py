"""Probing and decoding video with PyAV: every frame, with its exact timestamp.

Timestamps are kept as integer `pts` in the stream's `time_base` (a Fraction of a second), never as
rounded floats, so variable-frame-rate footage and A/V sync survive a decode -> encode round trip.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from facewright.errors import InvalidMediaError, NoVideoStreamError, TruncatedMediaError
from facewright.files import require_file
from facewright.media.image import IMAGE_SUFFIXES, Frame, image_problems
from facewright.media.isobmff import missing_index

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg", ".wmv")
_REENCODE_FIX = "re-export the file, or re-encode it: ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4"


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file. Times in seconds; `rotation` in degrees counter-clockwise."""

    index: int
    kind: str  # "video", "audio", "subtitle", "data"
    codec: str
    time_base: Fraction | None
    duration: float | None
    frames: int | None = None  # video: packets actually present (not the index's claim)
    width: int | None = None  # video: as displayed, rotation applied
    height: int | None = None
    fps: float | None = None  # video: average rate
    variable_frame_rate: bool | None = None
    rotation: int = 0
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found in a file, and any problems (truncation, corrupt packets, no video)."""

    path: Path
    container: str
    size_bytes: int
    duration: float | None
    streams: tuple[StreamInfo, ...]
    problems: tuple[str, ...] = ()

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame. `image` is H x W x 3 RGB uint8 with the stream's rotation applied."""

    index: int  # 0-based, in presentation order of the decoded frames
    pts: int  # in units of time_base
    time_base: Fraction
    image: Frame = field(repr=False)

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, turning FFmpeg's errors into typed ones naming the file."""
    path = require_file(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        cut = missing_index(path)
        if cut is not None:  # FFmpeg only says "invalid data"; the box walk shows the cut
            raise TruncatedMediaError(
                f"the file was cut off before its index (moov) was written: {cut}", path=path,
                decoded_frames=0, expected_frames=None,
                fix="re-copy the complete file, or let the recording/export finish; without its index no "
                    "frame can be found (index-rebuilding tools such as untrunc need an intact file from "
                    "the same camera)") from exc
        raise InvalidMediaError(f"not a media file FFmpeg can read ({exc.strerror})", path=path,
                                fix="check that it is a video and not truncated; " + _REENCODE_FIX) from exc


def video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    """The first video stream, or NoVideoStreamError naming what the file holds instead."""
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        raise NoVideoStreamError(f"no video stream (the file holds: {kinds})", path=path,
                                 fix="give a video file; audio-only files cannot be swapped")
    return container.streams.video[0]


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return float(value * time_base) if value is not None and time_base else None


def indexed_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int | None:
    """The frame count the container's index claims, where it can be trusted to compare with packets.

    Only MP4/MOV sample tables count exactly the stored frames; AVI's index also counts empty (dropped
    frame) chunks and Matroska/WebM have none, so there truncation shows only as a demux error.
    """
    family = container.format.name
    if "mp4" not in family and "mov" not in family:
        return None
    return stream.frames or None


def frame_pts(pts: int | None, index: int, fps: Fraction | None, time_base: Fraction | None) -> int:
    """A frame's pts, or, where the container stores none (raw .h264), its slot at the average rate.

    Falling back to the bare index would put frames 1 tick apart: raw H.264 gets a 1/1200000 s time base,
    so 25 fps footage would play 48000 times too fast.
    """
    if pts is not None:
        return pts
    if not fps or not time_base:
        return index
    return round(index / (fps * time_base))


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file: streams, duration, fps, exact frame count, rotation, problems.

    Counts video packets by demuxing, so it is fast and exact; packets the container's edit list
    discards are not counted, as a decoder does not output them. Only the first frame is decoded
    (for the display rotation).
    """
    path = require_file(path)
    problems: list[str] = []
    with open_media(path) as container:
        streams = []
        for stream in container.streams:
            if stream.type == "video":
                streams.append(_probe_video(container, stream, problems))
            else:
                streams.append(_probe_other(stream))
        if not container.streams.video:
            problems.append("no video stream")
        if _is_image(container, path):
            streams = _with_image_header(path, streams, problems)
        duration = container.duration / av.time_base if container.duration else None
        return MediaInfo(path=path, container=container.format.name, size_bytes=path.stat().st_size,
                         duration=duration, streams=tuple(streams), problems=tuple(problems))


def _is_image(container: av.container.InputContainer, path: Path) -> bool:
    name = container.format.name
    return path.suffix.lower() in IMAGE_SUFFIXES or name == "image2" or name.endswith("_pipe")


def _with_image_header(path: Path, streams: list[StreamInfo], problems: list[str]) -> list[StreamInfo]:
    """An image's problems as read_image finds them (FFmpeg reads a cut-off JPEG without a word, and gives a
    too-large PNG as 0x0), and its size from the header where FFmpeg gave none."""
    size, found = image_problems(path)
    problems += found
    if size is None:
        return streams
    return [dataclasses.replace(s, width=size[0], height=size[1]) if s.kind == "video" and not s.width else s
            for s in streams]


def _probe_other(stream: av.stream.Stream) -> StreamInfo:
    ctx = stream.codec_context
    audio = stream.type == "audio"
    return StreamInfo(
        index=stream.index, kind=stream.type, codec=ctx.codec.canonical_name if ctx else "unknown",
        time_base=stream.time_base, duration=_seconds(stream.duration, stream.time_base),
        sample_rate=ctx.sample_rate if audio else None, channels=ctx.channels if audio else None,
    )


def _probe_video(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 problems: list[str]) -> StreamInfo:
    shown: list[int] = []
    present = 0
    rotation: int | None = None
    try:
        for packet in container.demux(stream):
            if rotation is None:
                rotation = next((int(f.rotation) for f in _decode(packet)), None)
            if not packet.size:
                continue
            present += 1
            if not packet.is_discard:
                shown.append(frame_pts(packet.pts, len(shown), stream.average_rate, stream.time_base))
    except av.error.FFmpegError as exc:
        problems.append(f"demuxing stopped early ({exc.strerror})")
    expected = indexed_frames(container, stream)
    if expected and present < expected:
        problems.append(f"truncated: the index lists {expected} video frames, the file holds {present}")
    rotation = normalize_rotation(rotation or 0)
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation % 180:
        width, height = height, width
    return StreamInfo(
        index=stream.index, kind="video", codec=stream.codec_context.codec.canonical_name,
        time_base=stream.time_base, duration=_seconds(stream.duration, stream.time_base), frames=len(shown),
        width=width, height=height, fps=float(stream.average_rate) if stream.average_rate else None,
        variable_frame_rate=_is_vfr(shown), rotation=rotation,
    )


def _decode(packet: av.Packet) -> list[av.VideoFrame]:
    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []


def _is_vfr(pts: list[int]) -> bool:
    """True when frame durations differ by more than rounding (1 tick or 1%)."""
    if len(pts) < 3:
        return False
    deltas = np.diff(np.sort(np.asarray(pts)))
    return bool(deltas.max() - deltas.min() > max(1.0, 0.01 * float(np.median(deltas))))


def normalize_rotation(degrees: float) -> int:
    """Degrees counter-clockwise in (-180, 180]: 270 -> -90, -180 -> 180."""
    degrees = round(degrees) % 360
    return degrees - 360 if degrees > 180 else degrees


def rotate_upright(image: Frame, rotation: int) -> Frame:
    """Rotate a decoded image by its display rotation (degrees counter-clockwise), as players do."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


class VideoReader:
    """Decode the first video stream of a file into `VideoFrame`s, in presentation order.

    Frames come with exact pts; the decoder is flushed so the last frames are not lost; a corrupt packet
    is skipped and counted (`corrupt_packets`); a file that ends before its index says raises
    TruncatedMediaError after every decodable frame was yielded (or, with strict=False, is recorded in
    `problems`).
    """

    def __init__(self, path: str | Path, *, autorotate: bool = True, strict: bool = True, threads: bool = True):
        self.path = require_file(path)
        self.autorotate = autorotate
        self.strict = strict
        self.container = open_media(self.path)
        try:
            self.stream = video_stream(self.container, self.path)
        except NoVideoStreamError:
            self.container.close()
            raise
        if threads:
            self.stream.thread_type = "AUTO"  # frame + slice threads: ~2x decode speed on 2 cores
        self.time_base: Fraction = self.stream.time_base
        self.fps: Fraction | None = self.stream.average_rate
        self.decoded = 0
        self.corrupt_packets = 0
        self.problems: list[str] = []
        self._demux_failed = False

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def __iter__(self) -> Iterator[VideoFrame]:
        present = 0
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                self.problems.append(f"demuxing stopped early ({exc.strerror})")
                self._demux_failed = True
                yield from self._frames(self._flush())
                break
            present += bool(packet.size)
            yield from self._frames(self._decode_packet(packet))
        self._check_complete(present)

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        # The final empty packet flushes the decoder: skipping it loses the last (reordered) frames.
        try:
            return packet.decode()
        except av.error.InvalidDataError:
            self.corrupt_packets += 1
            return []

    def _flush(self) -> list[av.VideoFrame]:
        try:
            return self.stream.codec_context.decode(None)
        except av.error.FFmpegError:
            return []

    def _frames(self, frames: list[av.VideoFrame]) -> Iterator[VideoFrame]:
        for frame in frames:
            image = frame.to_ndarray(format="rgb24")
            if self.autorotate and frame.rotation:
                image = rotate_upright(image, int(frame.rotation))
            pts = frame_pts(_best_effort_pts(frame), self.decoded, self.fps, self.time_base)
            yield VideoFrame(index=self.decoded, pts=pts, time_base=self.time_base, image=image)
            self.decoded += 1

    def _check_complete(self, present: int) -> None:
        expected = indexed_frames(self.container, self.stream)
        if self.corrupt_packets:
            self.problems.append(f"{self.corrupt_packets} corrupt packet(s) skipped")
        truncated = bool(expected and present < expected) or self._demux_failed
        if not truncated:
            return
        message = f"the video is truncated: decoded {self.decoded} frames"
        message += f" of the {expected} its index lists" if expected else ""
        if self.strict:
            raise TruncatedMediaError(message, path=self.path, decoded_frames=self.decoded,
                                      expected_frames=expected,
                                      fix="the file ends early (a copy or download cut short?): re-copy or re-export "
                                          "it; `facewright probe` shows how much of it decodes")
        self.problems.append(message)


def _best_effort_pts(frame: av.VideoFrame) -> int | None:
    """The frame's pts, else FFmpeg's best-effort guess (from dts) where this PyAV exposes it.

    pts comes first: the guess switches to dts for streams with out-of-order pts, which would move frames.
    """
    if frame.pts is not None:
        return frame.pts
    return getattr(frame, "best_effort_timestamp", None)  # PyAV 14+ no longer exposes it


def read_video(path: str | Path, **options: bool) -> Iterator[VideoFrame]:
    """Yield every frame of a video; see VideoReader for the options and errors."""
    with VideoReader(path, **options) as reader:
        yield from reader
