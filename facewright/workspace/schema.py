"""The catalog's tables, as forward-only migrations: a new stage adds its tables as a new version."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]



MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "identities, media, runs, outputs", (
        """CREATE TABLE identities (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL)""",
        """CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            size_bytes INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
            width INTEGER, height INTEGER, frames INTEGER, fps REAL, duration REAL,
            has_audio INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL)""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            config_json TEXT NOT NULL,
            facewright_version TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
            error TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT)""",
        """CREATE TABLE outputs (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            source_media_id INTEGER REFERENCES media (id),
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL)""",
        "CREATE INDEX outputs_run ON outputs (run_id)",
    )),
    Migration(2, "facesets, faces, faceset sources, tracks", (
        """CREATE TABLE facesets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            identity_id INTEGER NOT NULL REFERENCES identities (id),
            face_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL)""",
        # One row per (faceset, source file, sampling): `done_at` set only when the whole source was read,
        # so a re-run skips finished sources and redoes an interrupted one.
        """CREATE TABLE faceset_sources (
            faceset_id INTEGER NOT NULL REFERENCES facesets (id),
            media_id INTEGER NOT NULL REFERENCES media (id),
            sampling TEXT NOT NULL,
            frames_read INTEGER NOT NULL DEFAULT 0,
            corrupt_frames INTEGER NOT NULL DEFAULT 0,
            done_at TEXT,
            PRIMARY KEY (faceset_id, media_id, sampling))""",
        """CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            faceset_id INTEGER NOT NULL REFERENCES facesets (id),
            media_id INTEGER NOT NULL REFERENCES media (id),
            frame_index INTEGER NOT NULL,
            pts INTEGER,
            time REAL,
            face_index INTEGER NOT NULL,
            track INTEGER,
            status TEXT NOT NULL CHECK (status IN ('kept', 'rejected')),
            reason TEXT,
            crop_path TEXT,
            mask_path TEXT,
            box BLOB NOT NULL,
            landmarks BLOB NOT NULL,
            matrix BLOB NOT NULL,
            yaw REAL, pitch REAL, roll REAL,
            face_width REAL, sharpness REAL, eyes_closed REAL, mouth_open REAL,
            blendshapes BLOB,
            embedding BLOB,
            crop_hash INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (faceset_id, media_id, frame_index, face_index))""",
        "CREATE INDEX faces_faceset_status ON faces (faceset_id, status)",
        # Per-frame geometry of each face track of a video that will be swapped (arrays in an .npz file).
        """CREATE TABLE tracks (
            id INTEGER PRIMARY KEY,
            media_id INTEGER NOT NULL REFERENCES media (id),
            track INTEGER NOT NULL,
            first_frame INTEGER NOT NULL,
            last_frame INTEGER NOT NULL,
            frames INTEGER NOT NULL,
            arrays_path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (media_id, track))""",
    )),
    Migration(3, "consents", (
        # One row per consent (provenance.consent); its signed twin is consents/<id>/record.json.
        # Revocation fills the revoked_* columns: a consent is never deleted.
        """CREATE TABLE consents (
            id TEXT PRIMARY KEY,
            identity_id INTEGER NOT NULL REFERENCES identities (id),
            display_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('source', 'target', 'both')),
            purpose TEXT NOT NULL,
            channels TEXT NOT NULL,
            expires TEXT NOT NULL,
            photo_path TEXT NOT NULL,
            photo_sha256 TEXT NOT NULL,
            embedding BLOB NOT NULL,
            release_sha256 TEXT,
            recorded_by TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',
            record_sha256 TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT,
            revoked_reason TEXT,
            CHECK (revoked_at IS NULL OR (revoked_by IS NOT NULL AND revoked_reason IS NOT NULL)))""",
        "CREATE INDEX consents_identity ON consents (identity_id)",
    )),
    Migration(4, "marks", (
        # One row per marked output (provenance.mark). `payload` is the 64-bit watermark id in hex: what
        # `verify` reads from a file whose manifest was stripped, to find this row.
        """CREATE TABLE marks (
            payload TEXT PRIMARY KEY,
            output_id INTEGER NOT NULL REFERENCES outputs (id),
            run_id INTEGER NOT NULL REFERENCES runs (id),
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
            label TEXT NOT NULL,
            consent_ids_json TEXT NOT NULL,
            consent_salt TEXT NOT NULL,
            signer_fingerprint TEXT NOT NULL,
            model TEXT,
            model_sha256 TEXT,
            parent_sha256 TEXT,
            created_at TEXT NOT NULL)""",
    )),
    Migration(5, "runs: the process that owns each run", (
        # Who runs it (locks.Owner): a run still 'running' whose process is gone was killed (SIGKILL, power
        # cut) and is closed as 'interrupted' when the workspace is next opened. `pid_started` (clock ticks
        # after boot) tells a reused pid apart. Runs recorded before this version have NULLs: left as they are.
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN pid_started INTEGER",
    )),
    Migration(6, "faces: the sha256 of each kept crop", (
        # What extraction wrote, so training can tell a crop replaced since (another person's face) from the
        # crop that was checked against the consent photo. Faces extracted before this version have NULL:
        # training checks each of those against the consent photo once, then records its hash.
        "ALTER TABLE faces ADD COLUMN crop_sha256 TEXT",
    )),
    Migration(7, "marks: a perceptual fingerprint of each output", (
        # provenance.fingerprint's thumbnails of the marked frames, so `verify` can tell the content a watermark
        # was put on from content it was copied onto. Outputs marked before this version have NULL: verify says
        # it cannot compare them.
        "ALTER TABLE marks ADD COLUMN fingerprint BLOB",
    )),
    Migration(8, "jobs: the web UI's queue of long work", (
        # One row per job the web UI queued (facewright.workspace.jobs): its kind and options, where it stands,
        # and its outcome. The work itself records its own runs; `pid` names the process that ran it, so the
        # runs it made can be found, and a server restart closes as 'interrupted' the jobs it left running.
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            params_json TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled',
                                                   'interrupted')),
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            pid INTEGER,
            error_json TEXT,
            result_json TEXT)""",
    )),
)
