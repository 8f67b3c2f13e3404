"""Reading and writing still images.

`Frame = NDArray[np.uint8]`: H x W x 3, RGB, the one in-memory image type of the whole package.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from facewright.errors import ImageTooLargeError, InvalidMediaError, UnsupportedFormatError
from facewright.files import atomic_path, check_output, require_file

Frame: TypeAlias = NDArray[np.uint8]  # H x W x 3, RGB

# 100 MP: a 12000 x 8000 camera photo fits; decoding past this would need gigabytes for one image.
MAX_PIXELS = 100_000_000
READ_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# zlib level of PNG writes. Measured 2026-12-03 (2-core x86_64, Pillow): a 256 px face crop took 10.7 ms at level 3
# against 26.9 ms at 6 (94 and 95 KB); previews, sheets and photos took 2-3x less time for 2-10% more bytes.
# At 6 the crops' encoding was 17.5 of the demo extraction's 28 s.
PNG_LEVEL = 3
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def read_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> Frame:
    """Read PNG, JPEG, WebP, BMP or TIFF as RGB uint8, EXIF orientation applied.

    16-bit channels keep their high byte, gray is repeated to RGB, alpha is composited over black.
    Raises a typed error for a missing, empty, corrupt, unsupported or over-large file.
    """
    path = require_file(path)
    with warnings.catch_warnings():
        # Our own limit is checked below, from the header, before any pixel is decoded.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                _check_header(image, path, max_pixels)
                image = ImageOps.exif_transpose(image)
                return to_rgb8(image)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"image over the {max_pixels / 1e6:.0f} MP limit", path=path,
                                     fix="downscale it below the limit first") from exc
        except UnidentifiedImageError as exc:
            raise UnsupportedFormatError("not an image facewright can read", path=path,
                                         fix=f"convert it to one of {', '.join(READ_FORMATS)}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidMediaError(f"image data is truncated or corrupt ({exc})", path=path,
                                    fix="re-export or re-copy the image") from exc


def image_problems(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> tuple[tuple[int, int] | None, list[str]]:
    """What `read_image` would refuse in an image file, for `probe`: (width, height) from its header (None where
    it has none that can be read) and the problems found: a size over the limit (from the header, before any
    pixel), an unsupported format, truncated or corrupt data (decoded once, so within the limit)."""
    size = None
    with warnings.catch_warnings(), contextlib.suppress(OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            size = image.size
    try:
        read_image(path, max_pixels=max_pixels)
    except (ImageTooLargeError, InvalidMediaError, UnsupportedFormatError) as exc:
        return size, [exc.message]
    return size, []


def _check_header(image: Image.Image, path: Path, max_pixels: int) -> None:
    if image.format not in READ_FORMATS:
        raise UnsupportedFormatError(f"{image.format} images are not supported", path=path,
                                     fix=f"convert it to one of {', '.join(READ_FORMATS)}")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{width}x{height} is {width * height / 1e6:.0f} MP, over the {max_pixels / 1e6:.0f} MP limit",
            path=path, fix="downscale it below the limit first")


def to_rgb8(image: Image.Image) -> Frame:
    """Convert any PIL mode to an H x W x 3 RGB uint8 array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.asarray(image).astype(np.int64)
        gray = (np.clip(gray, 0, 65535) >> 8).astype(np.uint8)  # high byte: what PIL does for 16-bit RGB
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float32)
        scale = 255.0 if gray.max(initial=0.0) <= 1.0 else 1.0
        gray = np.clip(gray * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[..., 3:4]
        return ((rgba[..., :3] * alpha + 127) // 255).astype(np.uint8)  # over black
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def write_image(image: Frame, path: str | Path, *, quality: int = 95, inputs: tuple[Path, ...] = (),
                private: bool = False) -> Path:
    """Write an RGB uint8 image as PNG, JPEG or WebP (chosen by suffix), atomically.

    `quality` applies to JPEG and WebP. `inputs` are paths the output must not overwrite. `private`: readable by
    its owner only (files.PRIVATE_FILE), for pictures of faces kept as data (crops, masks, contact sheets).
    """
    path = check_output(path, inputs)
    with atomic_path(path, private=private) as tmp:  # inside: a full disk is reported as what it is
        tmp.write_bytes(encode_image(image, path, quality=quality))
    return path


def encode_image(image: Frame, path: str | Path, *, quality: int = 95) -> bytes:
    """The bytes `write_image` writes to `path` (format by its suffix), for a file written elsewhere (a worker
    encodes, the driver writes)."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(f"cannot write {path.suffix or 'suffix-less'} images", path=path,
                                     fix=f"use one of {', '.join(WRITE_FORMATS)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 uint8 RGB, got {image.dtype} {image.shape}")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {"compress_level": PNG_LEVEL}
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()
