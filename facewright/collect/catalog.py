"""Catalog queries about facesets and stored face tracks, in one place (FacesetStore writes the faces).

Every stage that needs a faceset by name (training, reports, scoring, the swap's stored geometry) asks
here, so the SQL for these tables and the "no such faceset" message are written once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facewright.errors import InputError
from facewright.faces.identity import EMBEDDING_SIZE
from facewright.names import check_name
from facewright.workspace import Workspace, now

FACESETS = "facesets"  # workspace folder: facesets/<name>/{faces/, masks/}


@dataclass(frozen=True)
class Faceset:
    id: int
    name: str
    face_type: str
    size: int  # crop size in pixels
    folder: Path


def faceset_folder(ws: Workspace, name: str) -> Path:
    """facesets/<name>/ of the workspace; the name is checked here too, so no name (not even one an older
    catalog holds) makes a path outside the facesets folder."""
    return ws.root / FACESETS / check_name(name, "faceset name")


def find_faceset(ws: Workspace, name: str) -> Faceset | None:
    row = ws.conn.execute("SELECT id, face_type, size FROM facesets WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return Faceset(row["id"], name, row["face_type"], row["size"], faceset_folder(ws, name))


def get_faceset(ws: Workspace, name: str) -> Faceset:
    """Faceset `name`, or an InputError naming the facesets there are."""
    faceset = find_faceset(ws, name)
    if faceset is None:
        names = faceset_names(ws)
        raise InputError(f"no faceset named {name!r} in this workspace", path=ws.root,
                         fix=f"existing: {', '.join(names) or 'none'}; make one with "
                             f"facewright extract INPUT... --identity {name}")
    return faceset


def faceset_names(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.conn.execute("SELECT name FROM facesets ORDER BY name")]


def faceset_embeddings(ws: Workspace, name: str) -> NDArray[np.float32] | None:
    """N x 128 identity embeddings of faceset `name`'s kept faces; None if there is no such faceset."""
    faceset = find_faceset(ws, name)
    if faceset is None:
        return None
    rows = ws.conn.execute("SELECT embedding FROM faces WHERE faceset_id = ? AND status = 'kept' "
                           "AND embedding IS NOT NULL ORDER BY id", (faceset.id,)).fetchall()
    if not rows:
        return np.zeros((0, EMBEDDING_SIZE), np.float32)
    return np.stack([np.frombuffer(r["embedding"], np.float32) for r in rows])


def track_files(ws: Workspace, video_sha256: str) -> list[Path]:
    """The .npz files of the face tracks an `extract --for-swap` stored for a video, in track order."""
    rows = ws.conn.execute("SELECT t.arrays_path FROM tracks t JOIN media m ON m.id = t.media_id "
                           "WHERE m.sha256 = ? ORDER BY t.track", (video_sha256,)).fetchall()
    return [ws.root / row["arrays_path"] for row in rows]


def record_track(ws: Workspace, media_id: int, track: int, frames: list[int], path: Path) -> None:
    ws.conn.execute("INSERT OR REPLACE INTO tracks (media_id, track, first_frame, last_frame, frames, arrays_path, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (media_id, track, frames[0], frames[-1], len(frames), str(path.relative_to(ws.root)), now()))
