"""Media I/O: images (PIL) and video (PyAV) in, RGB uint8 frames with exact timestamps; video out with audio."""
from facewright.media.image import IMAGE_SUFFIXES, MAX_PIXELS, Frame, read_image, write_image
from facewright.media.kind import MediaKind, is_media, media_kind, sniff_type
from facewright.media.video import (
    VIDEO_SUFFIXES,
    MediaInfo,
    StreamInfo,
    VideoFrame,
    VideoReader,
    probe,
    read_video,
)
from facewright.media.writer import VideoOptions, VideoWriter

__all__ = [
    "IMAGE_SUFFIXES", "MAX_PIXELS", "VIDEO_SUFFIXES", "Frame", "MediaInfo", "MediaKind", "StreamInfo", "VideoFrame",
    "VideoOptions", "VideoReader", "VideoWriter", "is_media", "media_kind", "probe", "read_image", "read_video",
    "sniff_type", "write_image",
]
