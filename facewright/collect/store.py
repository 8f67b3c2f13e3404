"""A faceset in the workspace: its catalog rows and its folder of aligned crops and masks."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from facewright.collect.catalog import faceset_folder, find_faceset
from facewright.collect.records import FaceRecord, insert_faces, unsigned64
from facewright.config import ExtractOptions
from facewright.errors import OptionError
from facewright.faces.identity import cluster
from facewright.files import private_dir
from facewright.media.kind import MediaKind
from facewright.media.video import MediaInfo
from facewright.workspace import Workspace, now


class FacesetStore:
    """Reads and writes one faceset. The catalog row and the folder are made with the first face, so a run
    that finds no face leaves nothing behind."""

    def __init__(self, ws: Workspace, name: str, options: ExtractOptions):
        self.ws, self.name, self.options = ws, name, options
        self.folder = faceset_folder(ws, name)
        found = find_faceset(ws, name)
        if found and (found.face_type, found.size) != (options.face_type, options.size):
            raise OptionError(f"faceset {name} holds {found.face_type} crops of {found.size} px",
                              fix=f"extract with --face-type {found.face_type} --size {found.size}, "
                                  "or into a new --identity")
        self.id: int | None = found.id if found else None
        self._folders_made = False

    def ensure(self) -> int:
        if self.id is None:
            identity = self.ws.identity_id(self.name)
            self.id = self.ws.conn.execute(
                "INSERT INTO facesets (name, identity_id, face_type, size, created_at) VALUES (?, ?, ?, ?, ?)",
                (self.name, identity, self.options.face_type, self.options.size, now())).lastrowid
        if not self._folders_made:  # called before every crop written: make the folders once
            for sub in ("faces", "masks"):  # face crops are biometric data: readable by their owner only
                private_dir(self.folder / sub, self.ws.root)
            self._folders_made = True
        return self.id

    def is_done(self, media_sha256: str, sampling: str) -> bool:
        if self.id is None:
            return False
        return bool(self.ws.conn.execute(
            "SELECT 1 FROM faceset_sources s JOIN media m ON m.id = s.media_id WHERE s.faceset_id = ? "
            "AND m.sha256 = ? AND s.sampling = ? AND s.done_at IS NOT NULL",
            (self.id, media_sha256, sampling)).fetchone())

    def kept_hashes(self) -> dict[str, int]:
        """The crop hash of every kept face, by its crop's name (what the de-duplicator compares with)."""
        if self.id is None:
            return {}
        rows = self.ws.conn.execute("SELECT crop_path, crop_hash FROM faces WHERE faceset_id = ? AND status = 'kept'",
                                    (self.id,))
        return {Path(r[0]).stem: unsigned64(r[1]) for r in rows}

    def kept_earlier(self, media_sha256: str) -> set[tuple[int, int]]:
        """(frame, face) of the faces of one source file that earlier runs kept."""
        if self.id is None:
            return set()
        rows = self.ws.conn.execute(
            "SELECT f.frame_index, f.face_index FROM faces f JOIN media m ON m.id = f.media_id "
            "WHERE f.faceset_id = ? AND m.sha256 = ? AND f.status = 'kept'", (self.id, media_sha256))
        return {(r[0], r[1]) for r in rows}

    def save_input(self, info: MediaInfo, sha256: str, kind: MediaKind, sampling: str, records: list[FaceRecord],
                   frames_read: int, corrupt: int) -> None:
        """Record one finished input file and its faces in one transaction (all or nothing).

        A face an earlier run kept is replaced only by a kept face (a re-run adds or replaces, never loses);
        a crop or mask file that a replacement no longer names is deleted once the rows are committed.
        """
        faceset_id = self.ensure()
        with self.ws.transaction() as conn:
            media_id = self.ws.add_media(info.path, sha256, kind, **_media_facts(info))
            earlier = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
                "SELECT frame_index, face_index, crop_path, mask_path FROM faces WHERE faceset_id = ? "
                "AND media_id = ? AND status = 'kept'", (faceset_id, media_id))}
            records = [r for r in records if r.reason is None or (r.frame_index, r.face_index) not in earlier]
            insert_faces(conn, faceset_id, media_id, records, now())
            conn.execute("INSERT OR REPLACE INTO faceset_sources VALUES (?, ?, ?, ?, ?, ?)",
                         (faceset_id, media_id, sampling, frames_read, corrupt, now()))
        for record in records:
            for old, new in zip(earlier.get((record.frame_index, record.face_index), ()),
                                (record.crop_path, record.mask_path), strict=False):
                if old and old != new:
                    (self.folder / old).unlink(missing_ok=True)

    def keep_largest_identity(self, threshold: float) -> list[int]:
        """Cluster the kept faces by identity; reject all but the largest cluster ('other identity').

        Returns the sizes of the clusters that were rejected, largest first. Their crops are deleted.
        """
        rows = self.ws.conn.execute("SELECT id, embedding, crop_path, mask_path FROM faces WHERE faceset_id = ? "
                                    "AND status = 'kept' AND embedding IS NOT NULL", (self.id,)).fetchall()
        if len(rows) < 2:
            return []
        labels = cluster(np.stack([np.frombuffer(r["embedding"], np.float32) for r in rows]), threshold=threshold)
        others = [r for r, label in zip(rows, labels, strict=True) if label != 0]
        self.ws.conn.executemany("UPDATE faces SET status = 'rejected', reason = 'other identity', crop_path = NULL, "
                                 "mask_path = NULL WHERE id = ?", [(r["id"],) for r in others])
        for row in others:
            for rel in (row["crop_path"], row["mask_path"]):
                if rel:
                    (self.folder / rel).unlink(missing_ok=True)
        return [count for label, count in sorted(Counter(labels.tolist()).items()) if label != 0]

    def source_counts(self, media_sha256: str) -> dict[str, int]:
        """'kept' and each rejection reason, for the faces of one source file."""
        rows = self.ws.conn.execute(
            "SELECT COALESCE(f.reason, 'kept'), COUNT(*) FROM faces f JOIN media m ON m.id = f.media_id "
            "WHERE f.faceset_id = ? AND m.sha256 = ? GROUP BY 1", (self.id, media_sha256))
        return dict(rows.fetchall())

    def counts(self) -> dict[str, int]:
        rows = self.ws.conn.execute("SELECT COALESCE(reason, 'kept'), COUNT(*) FROM faces WHERE faceset_id = ? "
                                    "GROUP BY 1", (self.id,))
        return dict(rows.fetchall())


def _media_facts(info: MediaInfo) -> dict[str, float | int | None]:
    video = info.video
    if video is None:
        return {}
    return {"width": video.width, "height": video.height, "frames": video.frames, "fps": video.fps,
            "duration": info.duration, "has_audio": int(info.audio is not None)}


def sampling_key(options: ExtractOptions) -> str:
    """What decides which frames and faces a source gives: a changed option re-reads the source."""
    keys = ("every", "fps", "detector", "max_faces", "min_face", "min_sharpness", "max_yaw", "max_pitch")
    return json.dumps({k: getattr(options, k) for k in keys}, sort_keys=True)


def relative(path: Path, folder: Path) -> str:
    return str(path.relative_to(folder))
