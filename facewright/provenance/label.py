"""Visible labels: a disclosure drawn on every frame, sized relative to the picture.

Presets:
- "ai-generated": "AI-generated (face swap)" — a generic label, as the EU AI Act Art. 50 and China's deep
  synthesis rules ask of synthetic media;
- "manipulated": California AB 730's wording, "This video has been manipulated." ("image" for pictures);
- "none": no visible label. It must be chosen explicitly and is recorded in the C2PA manifest.

The label sits in a dark, slightly transparent box in a corner, its text height LABEL_HEIGHT of the
picture's shorter side (never under MIN_TEXT_PX), so it stays readable after downscaling.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from facewright.config import LABEL_POSITIONS as POSITIONS
from facewright.config import LABEL_PRESETS as PRESETS
from facewright.errors import OptionError
from facewright.media.image import Frame
from facewright.media.kind import MediaKind

LABEL_HEIGHT = 0.045  # text cap height as a share of the shorter side: ~16 px on 360p, ~49 px on 1080p
MIN_TEXT_PX = 12
BOX_ALPHA = 0.72  # the box darkens what is under it but still shows it


@dataclass(frozen=True)
class Label:
    preset: str
    position: str = "bottom-left"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise OptionError(f"unknown label {self.preset!r}", fix=f"use one of {', '.join(PRESETS)}")
        if self.position not in POSITIONS:
            raise OptionError(f"unknown label position {self.position!r}", fix=f"use one of {', '.join(POSITIONS)}")

    @property
    def visible(self) -> bool:
        return self.preset != "none"

    def text(self, kind: MediaKind) -> str | None:
        """The words shown on a medium of `kind`; None for "none"."""
        if self.preset == "ai-generated":
            return "AI-generated (face swap)"
        if self.preset == "manipulated":
            return f"This {MediaKind(kind)} has been manipulated."
        return None


@lru_cache(maxsize=8)
def overlay(text: str, width: int, height: int, position: str) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """The label as an RGBA float patch (premultiplied color, alpha in [0, 1]) and its (top, left) corner."""
    size = max(MIN_TEXT_PX, round(LABEL_HEIGHT * min(width, height)))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    pad = max(3, size // 3)
    box_w = min(width, right - left + 2 * pad)
    box_h = min(height, bottom - top + 2 * pad)
    patch = Image.new("RGBA", (box_w, box_h), (0, 0, 0, round(255 * BOX_ALPHA)))
    ImageDraw.Draw(patch).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    rgba = np.asarray(patch, np.float32) / 255.0
    alpha = rgba[:, :, 3:]
    premultiplied = np.concatenate([rgba[:, :, :3] * alpha * 255.0, alpha], axis=2)
    margin = max(2, size // 2)
    y = margin if position.startswith("top") else height - box_h - margin
    x = margin if position.endswith("left") else width - box_w - margin
    return premultiplied, (max(0, y), max(0, x))


def apply_label(image: Frame, label: Label, kind: MediaKind = MediaKind.VIDEO) -> Frame:
    """A copy of an H x W x 3 uint8 RGB picture with the label drawn on it (unchanged copy for "none")."""
    text = label.text(kind)
    out = image.copy()
    if text is None:
        return out
    height, width = image.shape[:2]
    patch, (top, left) = overlay(text, width, height, label.position)
    region = out[top:top + patch.shape[0], left:left + patch.shape[1]]
    patch = patch[:region.shape[0], :region.shape[1]]
    blended = patch[:, :, :3] + region.astype(np.float32) * (1.0 - patch[:, :, 3:])
    region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def label_boxes(width: int, height: int, kind: MediaKind = MediaKind.VIDEO) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of every visible label there can be on a width x height picture: each
    preset's text at each position. Quality measurements leave these boxes out of "the background"."""
    boxes = []
    for preset in PRESETS:
        text = Label(preset).text(kind)
        for position in POSITIONS if text else ():
            patch, (top, left) = overlay(text, width, height, position)
            boxes.append((top, left, top + patch.shape[0], left + patch.shape[1]))
    return boxes
