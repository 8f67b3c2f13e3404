"""A video as chunks that start on keyframes: planned from the packets, decoded alone, encoded alone, joined.

A chunk is a run of frames in presentation order that starts on a keyframe, so it decodes without the
frames before it and two processes can work on two chunks at once. Encoded with the same settings, each
chunk's file starts on a keyframe of its own; `join_segments` copies their packets one after another into
one file (no re-encode) and muxes the input's audio in once.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av

from facewright.errors import InvalidMediaError
from facewright.files import atomic_path
from facewright.media.audio import AudioPassthrough
from facewright.media.video import StreamInfo, VideoFrame, VideoReader, open_media, video_stream
from facewright.media.writer import CONTAINERS


@dataclass(frozen=True)
class Chunk:
    """Frames `first` .. `first + frames - 1` (presentation order) of a video; `start_pts` is the keyframe's."""

    index: int
    first: int
    frames: int
    start_pts: int
    stop_pts: int | None = None  # the next chunk's keyframe (None: the last chunk runs to the end)

    @property
    def stop(self) -> int:
        return self.first + self.frames

    def __contains__(self, frame: int) -> bool:
        return self.first <= frame < self.stop


@dataclass(frozen=True)
class KeyframeIndex:
    frames: int  # packets that hold a frame
    keyframes: tuple[tuple[int, int], ...]  # (frame index, pts) of each keyframe, in presentation order
    time_base: Fraction


def keyframe_index(path: str | Path) -> KeyframeIndex | None:
    """Where a video's keyframes are, from its packets alone (no decoding: ~10 ms for a 15 s clip); None when
    the packets carry no timestamps (raw streams), which then cannot be split."""
    with open_media(path) as container:
        stream = video_stream(container, Path(path))
        stamps, keys = [], []
        for packet in container.demux(stream):
            if not packet.size or packet.is_discard:  # an edit list's hidden frames are not decoded as frames
                continue
            if packet.pts is None:
                return None
            stamps.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
        order = {pts: i for i, pts in enumerate(sorted(stamps))}
        return KeyframeIndex(len(stamps), tuple(sorted((order[k], k) for k in set(keys))), stream.time_base)


def plan_chunks(index: KeyframeIndex | None, parts: int, min_frames: int) -> list[Chunk]:
    """Split the video into about `parts` chunks of nearly equal length, each starting on a keyframe and at
    least `min_frames` long (fewer chunks where the keyframes or the length do not allow more). One chunk is
    the whole video."""
    if index is None or index.frames == 0:
        return [Chunk(0, 0, index.frames if index else 0, 0)]
    starts = [0]
    for k in range(1, max(1, parts)):
        goal = index.frames * k // parts
        candidates = [f for f, _ in index.keyframes if f >= starts[-1] + min_frames and f <= index.frames - min_frames]
        if candidates:
            best = min(candidates, key=lambda f: abs(f - goal))
            if best > starts[-1]:
                starts.append(best)
    pts = dict(index.keyframes)
    first_pts = index.keyframes[0][1] if index.keyframes else 0
    bounds = [*starts, index.frames]
    return [Chunk(i, a, b - a, pts.get(a, first_pts), pts.get(b)) for i, (a, b) in enumerate(pairwise(bounds))]


def video_chunks(path: str | Path, video: StreamInfo | None, parts: int, min_seconds: float) -> list[Chunk]:
    """The chunks `parts` workers split a video into, each at least `min_seconds` long: one (the whole)
    when there is one worker, or the video is too short to split."""
    if parts <= 1 or video is None:
        return [Chunk(0, 0, video.frames if video else 0, 0)]
    min_frames = max(1, round(min_seconds * (video.fps or 30)))
    return plan_chunks(keyframe_index(path), parts, min_frames)


def read_chunk(path: str | Path, chunk: Chunk) -> Iterator[VideoFrame]:
    """The chunk's frames, decoded from its keyframe up to the next chunk's (by timestamp, so a frame that
    cannot be decoded never lets a chunk run on into the next), with their indices in the whole video."""
    with VideoReader(path, strict=False) as reader:
        if chunk.first > 0:
            reader.container.seek(chunk.start_pts, stream=reader.stream, backward=True, any_frame=False)
        count = 0
        for frame in reader:
            if chunk.first > 0 and frame.pts < chunk.start_pts:
                continue  # an open GOP's leading frames belong to the chunk before
            if chunk.stop_pts is not None and frame.pts >= chunk.stop_pts:
                return
            if count == 0 and chunk.first > 0 and frame.pts != chunk.start_pts:
                raise InvalidMediaError(f"frame {chunk.first} cannot be decoded on its own (the stream's keyframe "
                                        "there is not a clean start)", path=reader.path,
                                        fix="use --workers 1 for this file, or re-encode it with closed GOPs")
            yield replace(frame, index=chunk.first + count)
            count += 1
            if count == chunk.frames:
                return


def join_segments(segments: Sequence[Path], output: Path, *, audio_from: Path | None = None) -> Path:
    """Copy the video packets of `segments` (encoded alike, each starting on a keyframe, timestamps already
    those of the whole) one after another into `output`, with the first audio stream of `audio_from`.
    Atomic: nothing appears at `output` unless every packet was written."""
    if not segments:
        raise ValueError("no segments to join")
    with atomic_path(output) as tmp, av.open(str(tmp), "w", format=CONTAINERS[output.suffix.lower()]) as out:
        with av.open(str(segments[0])) as first:
            stream = out.add_stream_from_template(first.streams.video[0])
        audio = AudioPassthrough(audio_from, out) if audio_from and AudioPassthrough.has_audio(audio_from) else None
        try:
            last_dts = None
            for segment in segments:
                with av.open(str(segment)) as source:
                    for packet in source.demux(source.streams.video[0]):
                        if packet.dts is None and packet.pts is None:
                            continue  # the demuxer's final empty packet
                        if last_dts is not None and packet.dts is not None and packet.dts <= last_dts:
                            packet.dts = last_dts + 1  # B-frame delay at a seam: dts must keep rising
                        last_dts = packet.dts
                        seconds = float(packet.pts * packet.time_base) if packet.pts is not None else None
                        packet.stream = stream
                        out.mux(packet)
                        if audio is not None and seconds is not None:
                            audio.mux_until(seconds)
            if audio is not None:
                audio.finish()
        except BaseException:
            if audio is not None:
                audio.close()
            raise
    return output
