"""Image or video: the one place where a file's kind is decided, by its suffix."""
from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from facewright.media.image import IMAGE_SUFFIXES
from facewright.media.video import VIDEO_SUFFIXES


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


def media_kind(path: str | Path) -> MediaKind:
    """IMAGE for the formats read_image reads; VIDEO for anything else, since FFmpeg reads more containers
    than any list names (the decoder then decides, with a typed error for what it cannot read)."""
    return MediaKind.IMAGE if Path(path).suffix.lower() in IMAGE_SUFFIXES else MediaKind.VIDEO


def is_media(path: str | Path) -> bool:
    """Whether the suffix is one of the known image or video formats (what a folder scan picks up)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
