"""Visible labels: presets, size relative to the picture, drawn only inside their box."""
from __future__ import annotations

import numpy as np
import pytest

from facewright.errors import OptionError
from facewright.provenance.label import Label, apply_label, overlay


def gray(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero((before != after).any(axis=2))
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_texts_of_the_presets():
    assert Label("manipulated").text("video") == "This video has been manipulated."  # AB 730's wording
    assert Label("manipulated").text("image") == "This image has been manipulated."
    assert "AI-generated" in Label("ai-generated").text("video")
    assert Label("none").text("video") is None and not Label("none").visible


def test_none_leaves_the_picture_unchanged_and_returns_a_copy():
    image = gray(90, 160)
    out = apply_label(image, Label("none"))
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_label_is_drawn_in_its_corner_only_and_input_kept():
    image = gray(360, 640)
    before = image.copy()
    out = apply_label(image, Label("manipulated", "bottom-left"))
    np.testing.assert_array_equal(image, before)
    top, bottom, left, right = changed_box(image, out)
    assert bottom < 360 and top > 360 // 2 and left < 640 // 4  # bottom-left quarter
    assert out[top:bottom + 1, left:right + 1].mean() < 128  # a dark box with light text


@pytest.mark.parametrize("position", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_positions(position):
    out = apply_label(gray(200, 800), Label("ai-generated", position))
    top, bottom, left, right = changed_box(gray(200, 800), out)
    assert (bottom < 100) == position.startswith("top")
    assert (right < 400) == position.endswith("left")


def test_label_scales_with_the_picture():
    small = overlay("This video has been manipulated.", 640, 360, "bottom-left")[0].shape[0]
    large = overlay("This video has been manipulated.", 1920, 1080, "bottom-left")[0].shape[0]
    assert 2.5 < large / small < 3.5


def test_tiny_picture_gets_a_clipped_but_readable_label():
    out = apply_label(gray(40, 60), Label("manipulated"))
    assert out.shape == (40, 60, 3) and (out != 128).any()


@pytest.mark.parametrize("bad", [{"preset": "subtle"}, {"preset": "none", "position": "middle"}])
def test_unknown_options_are_refused(bad):
    with pytest.raises(OptionError):
        Label(**bad)
