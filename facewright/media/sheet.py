"""Contact sheets: many images on one grid with a caption under each, for a quick look at a set."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from facewright.media.image import Frame

CAPTION_HEIGHT = 16


def contact_sheet(images: Sequence[Frame], captions: Sequence[str] = (), *, columns: int = 4,
                  cell_width: int = 240) -> Frame:
    """Tile RGB images (resized to `cell_width`, aspect kept) into one RGB image, captions beneath."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    cells = [_fit(image, cell_width) for image in images]
    cell_height = max(c.shape[0] for c in cells) + CAPTION_HEIGHT
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * cell_width, rows * cell_height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, cell in enumerate(cells):
        x, y = (i % columns) * cell_width, (i // columns) * cell_height
        sheet.paste(Image.fromarray(cell), (x, y))
        if i < len(captions):
            draw.text((x + 4, y + cell.shape[0] + 2), captions[i], fill=(230, 230, 230))
    return np.asarray(sheet)


def _fit(image: Frame, width: int) -> Frame:
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
