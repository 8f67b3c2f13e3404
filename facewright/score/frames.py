"""Every output frame of a swap paired with the input frame it was made from.

Frames pair by index, and their times must agree within half a frame: a re-timed output (frames dropped or
added) is refused rather than scored against the wrong pictures. An output padded by one pixel to even sides
(yuv420p) is cropped back to the input's size.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facewright.errors import InputError, NoVideoStreamError
from facewright.files import require_file
from facewright.media.image import Frame, read_image
from facewright.media.kind import MediaKind, media_kind
from facewright.media.video import StreamInfo, VideoReader, probe

FramePair = tuple[int, float, Frame, Frame]  # frame index, seconds, output picture, input picture


def paired_frames(output: Path, target: Path) -> tuple[Iterator[FramePair], int, bool]:
    """(frame index, seconds, output picture, input picture) pairs, their count, and whether they are video.

    The output may be the input padded by one pixel to even sides (yuv420p); it is cropped back.
    """
    output, target = require_file(output), require_file(target)
    images = [media_kind(p) == MediaKind.IMAGE for p in (output, target)]
    if images[0] != images[1]:
        raise InputError("the output and the input must both be images or both be videos", path=output,
                         fix="pass the file the swap was made from as the target")
    if images[0]:
        out, ref = read_image(output), read_image(target)
        _check_sizes(out, ref, output, target)
        return iter([(0, 0.0, out[:ref.shape[0], :ref.shape[1]], ref)]), 1, False
    streams = [video_stream(p) for p in (output, target)]
    counts = [s.frames for s in streams]
    if None not in counts and abs(counts[0] - counts[1]) > max(1, counts[1] // 100):
        raise InputError(f"{output.name} has {counts[0]} frames and {target.name} has {counts[1]}: the score "
                         "compares them frame by frame", path=output,
                         fix="pass the video the swap was made from as the target")
    # Frames pair by index; their times must agree too (within half a frame), or the output was re-timed.
    tolerance = 0.5 / (streams[1].fps or 25.0)
    count = min(c for c in counts if c is not None) if any(counts) else 0
    return _video_pairs(output, target, tolerance), count, True


def video_stream(path: Path) -> StreamInfo:
    stream = probe(path).video
    if stream is None:
        raise NoVideoStreamError("no video stream (audio only?): there are no pictures to score", path=path,
                                 fix="give the swapped video, the video it was made from, or a photo")
    return stream


def _video_pairs(output: Path, target: Path, tolerance: float) -> Iterator[FramePair]:
    with VideoReader(output) as outs, VideoReader(target) as refs:
        for out, ref in zip(outs, refs, strict=False):
            if out.index == 0:
                _check_sizes(out.image, ref.image, output, target)
                starts = out.time, ref.time
            if abs((out.time - starts[0]) - (ref.time - starts[1])) > tolerance:
                raise InputError(f"frame {ref.index} is at {out.time - starts[0]:.3f} s in {output.name} and at "
                                 f"{ref.time - starts[1]:.3f} s in {target.name}: the frames do not line up in "
                                 "time (was the output re-timed, or frames dropped?)", path=output,
                                 fix="score against the footage the swap was made from, at its frame rate")
            yield ref.index, ref.time, out.image[:ref.image.shape[0], :ref.image.shape[1]], ref.image


def _check_sizes(out: Frame, ref: Frame, output: Path, target: Path) -> None:
    extra = (out.shape[0] - ref.shape[0], out.shape[1] - ref.shape[1])
    if extra not in ((0, 0), (0, 1), (1, 0), (1, 1)):
        raise InputError(f"{output.name} is {out.shape[1]}x{out.shape[0]} and {target.name} is "
                         f"{ref.shape[1]}x{ref.shape[0]}: the score compares them pixel by pixel", path=output,
                         fix="pass the file the swap was made from as the target")

