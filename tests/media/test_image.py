import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facewright.errors import UnsupportedFormatError
from facewright.media import read_image, write_image
from tests.media.helpers import gradient


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    """A minimal PNG written by hand (PIL cannot write 16-bit RGB, nor claim a size it does not hold)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw_rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_read_formats(tmp_path, suffix):
    image = gradient(40, 30)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(image).save(path, quality=95) if suffix in (".jpg", ".webp") else Image.fromarray(image).save(path)
    loaded = read_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (30, 40, 3)
    assert np.abs(loaded.astype(int) - image).mean() < 4


def test_exif_orientation_is_applied(tmp_path):
    image = gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(image).save(tmp_path / "o.jpg", exif=exif, quality=98)
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.shape == (40, 20, 3)
    assert np.abs(loaded.astype(int) - np.rot90(image, k=-1)).mean() < 4


def test_16bit_gray_png_is_scaled(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    loaded = read_image(tmp_path / "g16.png")
    assert loaded[0, :, 0].tolist() == [0, 1, 255, 128]
    assert (loaded[..., 0] == loaded[..., 2]).all()


def test_16bit_rgb_png_is_scaled(tmp_path):
    pixels = np.array([[[0, 32896, 65535], [257, 514, 65280]]], dtype=">u2")
    rows = b"\x00" + pixels.tobytes()
    (tmp_path / "rgb16.png").write_bytes(png_bytes(2, 1, 16, 2, rows))
    loaded = read_image(tmp_path / "rgb16.png")
    assert loaded.tolist() == [[[0, 128, 255], [1, 2, 255]]]  # the high byte of each channel


def test_gray_and_alpha(tmp_path):
    Image.fromarray(np.full((4, 4), 77, np.uint8), "L").save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png").tolist() == np.full((4, 4, 3), 77).tolist()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[1, :, 3] = 255, 0, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    loaded = read_image(tmp_path / "alpha.png")
    assert loaded[0, 0].tolist() == [200] * 3 and loaded[0, 1].tolist() == [0] * 3  # over black
    assert loaded[1, 0].tolist() == [100] * 3


def test_write_image_round_trip(tmp_path):
    image = gradient(33, 17)
    assert (read_image(write_image(image, tmp_path / "a.png")) == image).all()
    jpeg = read_image(write_image(image, tmp_path / "a.jpg", quality=95))
    assert np.abs(jpeg.astype(int) - image).mean() < 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]  # no temp files left


def test_write_image_refuses_unknown_suffix(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="a.gif"):
        write_image(gradient(8, 8), tmp_path / "a.gif")
