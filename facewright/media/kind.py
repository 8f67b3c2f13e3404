"""Image or video: the one place where a file's kind is decided, by its suffix; and what its first bytes say it is."""
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


def sniff_type(head: bytes) -> str | None:
    """The container a file's first 16 bytes show: png, jpg, webp, mov (QuickTime), mp4 (other ISO BMFF), mkv
    (Matroska, WebM), avi or pdf; None for anything else. The content's word, not the name's."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        return "webp" if head[8:12] == b"WEBP" else "avi"
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "mkv"
    return "pdf" if head.startswith(b"%PDF-") else None
