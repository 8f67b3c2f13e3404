"""Faceset reports: counts by reason, a contact sheet of faces, and a yaw-pitch coverage plot."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facewright.collect.catalog import faceset_names, get_faceset
from facewright.errors import InputError
from facewright.media import read_image
from facewright.media.image import Frame
from facewright.media.sheet import contact_sheet
from facewright.workspace import Workspace

POSE_BIN = 15  # degrees per cell of the coverage grid
YAW_RANGE, PITCH_RANGE = 90, 60


@dataclass(frozen=True)
class FacesetSummary:
    name: str
    face_type: str
    size: int
    kept: int
    rejected: dict[str, int]  # reason -> count
    inputs: list[tuple[str, int, int]]  # (path, frames looked at, faces kept) per input file
    folder: Path


def summarize(ws: Workspace, name: str) -> FacesetSummary:
    faceset = get_faceset(ws, name)
    fid = faceset.id
    counts = dict(ws.conn.execute("SELECT COALESCE(reason, 'kept'), COUNT(*) FROM faces WHERE faceset_id = ? "
                                  "GROUP BY 1 ORDER BY 2 DESC", (fid,)).fetchall())
    inputs = ws.conn.execute(
        "SELECT m.path, s.frames_read, (SELECT COUNT(*) FROM faces f WHERE f.faceset_id = s.faceset_id AND "
        "f.media_id = s.media_id AND f.status = 'kept') FROM faceset_sources s JOIN media m ON m.id = s.media_id "
        "WHERE s.faceset_id = ? ORDER BY m.path", (fid,)).fetchall()
    kept = counts.pop("kept", 0)
    return FacesetSummary(name, faceset.face_type, faceset.size, kept, counts, [tuple(r) for r in inputs],
                          faceset.folder)


def list_facesets(ws: Workspace) -> list[FacesetSummary]:
    return [summarize(ws, name) for name in faceset_names(ws)]


def sheet_of_faces(ws: Workspace, name: str, count: int = 48, columns: int = 8) -> Frame:
    """A contact sheet of up to `count` kept faces spread evenly over the faceset, captioned with pose."""
    faceset = get_faceset(ws, name)
    rows = ws.conn.execute("SELECT crop_path, yaw, pitch FROM faces WHERE faceset_id = ? AND status = 'kept' "
                           "ORDER BY media_id, frame_index, face_index", (faceset.id,)).fetchall()
    if not rows:
        raise InputError(f"faceset {name!r} has no kept faces", path=faceset.folder, fix="extract more footage into it")
    picks = [rows[round(i)] for i in np.linspace(0, len(rows) - 1, min(count, len(rows)))]
    images = [_crop(faceset.folder / r["crop_path"], name) for r in picks]
    captions = [f"yaw {r['yaw']:+.0f} pitch {r['pitch']:+.0f}" for r in picks]
    return contact_sheet(images, captions, columns=min(columns, len(images)), cell_width=128)


def _crop(path: Path, faceset: str) -> Frame:
    """A kept face's crop; one that no longer reads (changed or damaged outside facewright) names the way out."""
    try:
        return read_image(path)
    except InputError as exc:
        raise type(exc)(f"a crop of faceset {faceset!r} cannot be read ({exc.message})", path=path,
                        fix=f"delete it, then run: facewright faceset prune {faceset}") from exc


def pose_plot(ws: Workspace, name: str, scale: int = 4) -> Frame:
    """Yaw (x) against pitch (y) of every face: kept green, rejected gray; empty 15-degree cells shaded red,
    so the poses a faceset lacks are visible at a glance."""
    rows = ws.conn.execute("SELECT yaw, pitch, status FROM faces WHERE faceset_id = ?",
                           (get_faceset(ws, name).id,)).fetchall()
    width, height = 2 * YAW_RANGE * scale, 2 * PITCH_RANGE * scale
    canvas = Image.new("RGB", (width + 60, height + 40), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)

    def xy(yaw: float, pitch: float) -> tuple[float, float]:
        return 40 + (yaw + YAW_RANGE) * scale, 10 + (PITCH_RANGE - pitch) * scale

    _shade_empty_cells(draw, [(r["yaw"], r["pitch"]) for r in rows if r["status"] == "kept"], xy, scale)
    for r in sorted(rows, key=lambda r: r["status"] == "kept"):  # kept drawn last, on top
        x, y = xy(float(np.clip(r["yaw"], -YAW_RANGE, YAW_RANGE)), float(np.clip(r["pitch"], -PITCH_RANGE,
                                                                                  PITCH_RANGE)))
        color = (30, 150, 60) if r["status"] == "kept" else (170, 170, 170)
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
    _axes(draw, xy, width, height)
    return np.asarray(canvas)


def _shade_empty_cells(draw: ImageDraw.ImageDraw, kept: list[tuple[float, float]], xy, scale: int) -> None:
    filled = {(int((y + YAW_RANGE) // POSE_BIN), int((p + PITCH_RANGE) // POSE_BIN)) for y, p in kept}
    for i, yaw in enumerate(range(-YAW_RANGE, YAW_RANGE, POSE_BIN)):
        for j, pitch in enumerate(range(-PITCH_RANGE, PITCH_RANGE, POSE_BIN)):
            if (i, j) not in filled:
                x0, y1 = xy(yaw, pitch)
                draw.rectangle((x0, y1 - POSE_BIN * scale, x0 + POSE_BIN * scale, y1), fill=(255, 228, 228))


def _axes(draw: ImageDraw.ImageDraw, xy, width: int, height: int) -> None:
    for yaw in range(-YAW_RANGE, YAW_RANGE + 1, 30):
        x, _ = xy(yaw, 0)
        draw.line((x, 10, x, 10 + height), fill=(215, 215, 215))
        draw.text((x - 8, height + 14), f"{yaw:+d}", fill=(60, 60, 60))
    for pitch in range(-PITCH_RANGE, PITCH_RANGE + 1, 30):
        _, y = xy(0, pitch)
        draw.line((40, y, 40 + width, y), fill=(215, 215, 215))
        draw.text((4, y - 6), f"{pitch:+d}", fill=(60, 60, 60))
    draw.text((40 + width // 2 - 90, height + 26), "yaw (deg) across, pitch (deg) up; red: no kept face",
              fill=(60, 60, 60))


@dataclass(frozen=True)
class PruneResult:
    orphan_files: int  # crops/masks on disk that no record names (left by an interrupted run): deleted
    missing_files: int  # kept faces whose crop was deleted by hand: now rejected 'removed by user'


def prune(ws: Workspace, name: str) -> PruneResult:
    """Sync the catalog with the faceset folder: a user may delete bad crops in a file browser."""
    faceset = get_faceset(ws, name)
    folder = faceset.folder
    rows = ws.conn.execute("SELECT id, crop_path, mask_path FROM faces WHERE faceset_id = ? AND status = 'kept'",
                           (faceset.id,)).fetchall()
    missing = [r for r in rows if not (folder / r["crop_path"]).exists()]
    ws.conn.executemany("UPDATE faces SET status = 'rejected', reason = 'removed by user' WHERE id = ?",
                        [(r["id"],) for r in missing])
    for row in missing:
        (folder / row["mask_path"]).unlink(missing_ok=True)
    named = {p for r in rows if r not in missing for p in (r["crop_path"], r["mask_path"])}
    orphans = [p for p in folder.glob("*/*") if p.is_file() and str(p.relative_to(folder)) not in named]
    for path in orphans:
        path.unlink()
    return PruneResult(len(orphans), len(missing))
