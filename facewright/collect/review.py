"""Reviewing a faceset by hand: a filtered page of its faces, the pose cells they fall in, and removing the
ones a person throws out (what deleting crops in a file browser and `faceset prune` do, in one step)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from facewright.collect.catalog import get_faceset
from facewright.collect.report import PITCH_RANGE, POSE_BIN, YAW_RANGE
from facewright.errors import InputError
from facewright.workspace import Workspace

CELLS = {(yaw, pitch) for yaw in range(-YAW_RANGE, YAW_RANGE, POSE_BIN)
         for pitch in range(-PITCH_RANGE, PITCH_RANGE, POSE_BIN)}  # lower corners of the coverage grid's cells
MAX_REMOVED = 1000  # faces removed by one call
REMOVED = "removed by user"  # the reject reason of a face thrown out in review (as prune records a deleted crop)


@dataclass(frozen=True)
class FaceFilter:
    status: str = "kept"  # kept, rejected or all
    reason: str = ""  # a reject reason, exact ("" for any)
    cell: tuple[int, int] | None = None  # (yaw, pitch) of a pose cell's lower corner, degrees
    min_sharpness: float | None = None
    max_sharpness: float | None = None

    def __post_init__(self) -> None:
        if self.status not in ("kept", "rejected", "all"):
            raise InputError(f"unknown face status {self.status!r}", fix="kept, rejected or all")
        if self.cell is not None and self.cell not in CELLS:
            raise InputError(f"{self.cell} is not a pose cell's corner", fix=f"yaw and pitch multiples of {POSE_BIN} "
                             f"within +-{YAW_RANGE} and +-{PITCH_RANGE}, e.g. 0,-15")


@dataclass(frozen=True)
class FaceRow:
    id: int
    status: str
    reason: str | None
    crop: str | None  # faceset-relative path of the aligned crop (None: a rejected face keeps no crop)
    frame_index: int
    source: str  # the media file's name
    yaw: float
    pitch: float
    sharpness: float | None


@dataclass(frozen=True)
class FacePage:
    rows: list[FaceRow]
    total: int  # faces that pass the filter, over all pages
    offset: int


def pose_cell(yaw: float, pitch: float) -> tuple[int, int]:
    """The lower corner (degrees) of the POSE_BIN cell a pose falls in, clamped to the plot's range."""
    clamp = lambda v, r: min(max(v, -r), r - 1e-6)  # noqa: E731
    return (int(math.floor(clamp(yaw, YAW_RANGE) / POSE_BIN) * POSE_BIN),
            int(math.floor(clamp(pitch, PITCH_RANGE) / POSE_BIN) * POSE_BIN))


def pose_cells(ws: Workspace, name: str) -> dict[tuple[int, int], int]:
    """Kept faces per pose cell (cells with none are absent): the coverage plot as numbers."""
    counts: dict[tuple[int, int], int] = {}
    for row in ws.conn.execute("SELECT yaw, pitch FROM faces WHERE faceset_id = ? AND status = 'kept'",
                               (get_faceset(ws, name).id,)):
        cell = pose_cell(row[0] or 0.0, row[1] or 0.0)
        counts[cell] = counts.get(cell, 0) + 1
    return counts


def face_page(ws: Workspace, name: str, where: FaceFilter = FaceFilter(), *, offset: int = 0,
              limit: int = 60) -> FacePage:
    """The faces of faceset `name` that pass `where`, in extraction order, `limit` from `offset`."""
    clauses, args = ["f.faceset_id = ?"], [get_faceset(ws, name).id]
    if where.status != "all":
        clauses.append("f.status = ?")
        args.append(where.status)
    if where.reason:
        clauses.append("f.reason = ?")
        args.append(where.reason)
    if where.cell is not None:
        for column, corner, limit_ in (("yaw", where.cell[0], YAW_RANGE), ("pitch", where.cell[1], PITCH_RANGE)):
            clauses.append(f"COALESCE(f.{column}, 0) >= ? AND COALESCE(f.{column}, 0) < ?")
            args += _cell_span(corner, limit_)
    for bound, op in ((where.min_sharpness, ">="), (where.max_sharpness, "<=")):
        if bound is not None:
            clauses.append(f"f.sharpness {op} ?")
            args.append(bound)
    condition = " AND ".join(clauses)
    total = ws.conn.execute(f"SELECT COUNT(*) FROM faces f WHERE {condition}", args).fetchone()[0]
    rows = ws.conn.execute(
        f"SELECT f.id, f.status, f.reason, f.crop_path, f.frame_index, m.path, f.yaw, f.pitch, f.sharpness "
        f"FROM faces f JOIN media m ON m.id = f.media_id WHERE {condition} "
        f"ORDER BY f.media_id, f.frame_index, f.face_index LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return FacePage([FaceRow(r[0], r[1], r[2], r[3], r[4], Path(r[5]).name, r[6] or 0.0, r[7] or 0.0, r[8])
                     for r in rows], total, offset)


def _cell_span(corner: int, limit: int) -> list[float]:
    """The values a cell holds along one axis: the edge cells also hold the poses beyond the plot's range."""
    low = corner if corner > -limit else -_BEYOND
    high = corner + POSE_BIN if corner + POSE_BIN < limit else _BEYOND
    return [low, high]


_BEYOND = 1e9  # degrees: past any pose


def reject_reasons(ws: Workspace, name: str) -> dict[str, int]:
    rows = ws.conn.execute("SELECT reason, COUNT(*) FROM faces WHERE faceset_id = ? AND status = 'rejected' "
                           "GROUP BY reason ORDER BY 2 DESC", (get_faceset(ws, name).id,))
    return {row[0] or "": row[1] for row in rows}


def crop_file(ws: Workspace, name: str, face_id: int) -> Path:
    """The aligned crop of one kept face of faceset `name` (an InputError for another faceset's face)."""
    faceset = get_faceset(ws, name)
    row = ws.conn.execute("SELECT crop_path FROM faces WHERE id = ? AND faceset_id = ?",
                          (face_id, faceset.id)).fetchone()
    if row is None or not row[0] or not (faceset.folder / row[0]).is_file():
        raise InputError(f"faceset {name!r} has no crop for face {face_id}", path=faceset.folder,
                         fix="reload the page: the face may have been removed")
    return faceset.folder / row[0]


def remove_faces(ws: Workspace, name: str, face_ids: list[int]) -> int:
    """Reject the kept faces `face_ids` of faceset `name` as removed by the user and delete their crop and mask
    files; return how many were removed. Ids of other facesets' faces are refused, all or nothing."""
    faceset = get_faceset(ws, name)
    wanted = sorted(set(face_ids))
    if len(wanted) > MAX_REMOVED:
        raise InputError(f"{len(wanted)} faces at once; at most {MAX_REMOVED}", path=faceset.folder,
                         fix="remove them in smaller selections")
    marks = ",".join("?" * len(wanted))
    rows = ws.conn.execute(f"SELECT id, status, crop_path, mask_path FROM faces WHERE faceset_id = ? "
                           f"AND id IN ({marks})", [faceset.id, *wanted]).fetchall() if wanted else []
    if len(rows) != len(wanted):
        strangers = sorted(set(wanted) - {r["id"] for r in rows})
        raise InputError(f"faces {strangers} are not in faceset {name!r}", path=faceset.folder,
                         fix="reload the page and select again")
    kept = [r for r in rows if r["status"] == "kept"]
    with ws.transaction():
        ws.conn.executemany("UPDATE faces SET status = 'rejected', reason = ? WHERE id = ?",
                            [(REMOVED, r["id"]) for r in kept])
    for row in kept:  # after the commit: a crash between leaves files that prune removes as orphans
        for relative in (row["crop_path"], row["mask_path"]):
            if relative:
                (faceset.folder / relative).unlink(missing_ok=True)
    return len(kept)
