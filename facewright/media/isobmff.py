"""ISO base media (MP4/MOV) top-level boxes: enough to tell a file cut off before its index from a corrupt one.

Most MP4/MOV writers (cameras, phones, FFmpeg without +faststart, facewright itself) write the index box
`moov` after the media data. A copy or recording stopped early then has no index, and FFmpeg only says
"invalid data"; walking the top-level box sizes shows the cut.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

HEADER = struct.Struct(">I4s")  # 32-bit size (header included), 4-character type
LARGE_SIZE = struct.Struct(">Q")  # follows the header when the 32-bit size is 1


def missing_index(path: Path) -> str | None:
    """Why an MP4/MOV file has no usable index (its cut-off point), or None if it is not MP4/MOV or looks whole.

    Only reads box headers: a few bytes per top-level box, whatever the file size.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        boxes = list(_top_level_boxes(handle, size))
    if not boxes or boxes[0][0] != b"ftyp":
        return None  # not ISO base media: nothing to say
    for kind, start, end in boxes:
        if end > size:
            return (f"the '{kind.decode('latin-1')}' box at byte {start} needs {end - start} bytes, "
                    f"the file ends {end - size} bytes early")
    if all(kind != b"moov" for kind, _, _ in boxes):
        return f"no 'moov' index box in its {size} bytes"
    return None


def _top_level_boxes(handle: BinaryIO, size: int):
    """Yield (type, start, end) of each top-level box; stops at a header that makes no sense."""
    offset = 0
    while offset + HEADER.size <= size:
        handle.seek(offset)
        length, kind = HEADER.unpack(handle.read(HEADER.size))
        header = HEADER.size
        if length == 1:  # 64-bit size follows (media data over 4 GB)
            raw = handle.read(LARGE_SIZE.size)
            if len(raw) < LARGE_SIZE.size:
                return
            length, header = LARGE_SIZE.unpack(raw)[0], header + LARGE_SIZE.size
        elif length == 0:  # "runs to the end of the file": only a final mdat of an unfinished file
            length = size - offset
        if length < header:
            return  # garbage, not a box: leave the verdict to FFmpeg's error
        yield kind, offset, offset + length
        offset += length
