"""A workspace: one folder holding a SQLite catalog and the files the pipeline makes.

The catalog (WAL, foreign keys on) records identities, media, runs, outputs, facesets, faces and video
face tracks; later stages add their tables (consents, ...) as new migrations. Migrations only go
forward; the catalog is backed up before each upgrade, and a catalog made by a newer facewright is
refused, not downgraded.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from facewright import __version__
from facewright.errors import WorkspaceError
from facewright.files import sha256_file

if TYPE_CHECKING:
    from facewright.provenance.mark import MarkPlan, MarkResult

DEFAULT_WORKSPACE = "facewright-workspace"
CATALOG = "catalog.sqlite"


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
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def resolve_root(root: str | Path | None = None) -> Path:
    """The workspace folder: the argument, else $FACEWRIGHT_WORKSPACE, else ./facewright-workspace."""
    return Path(root or os.environ.get("FACEWRIGHT_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)  # explicit transactions below
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    _enable_wal(conn)  # readers do not block the writer (web UI beside a job)
    conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; a power cut loses at most the last commit
    return conn


def _enable_wal(conn: sqlite3.Connection, seconds: float = 30.0) -> None:
    """Switch the catalog to WAL, retrying while another process holds it.

    Switching takes an exclusive lock without waiting on the busy timeout, so processes opening a fresh
    catalog at the same moment (two `facewright init`) get "database is locked" at once.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # low byte: the primary code
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def schema_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has_table:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, db: Path, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending migrations in one transaction, under the catalog's write lock; return the version.

    Several processes may open a fresh workspace at once (`facewright init` twice): each takes the lock,
    then reads the version, so only the first migrates and the others find nothing pending.
    """
    latest = migrations[-1].version if migrations else 0
    if _check_version(schema_version(conn), latest, db) == latest:
        return latest  # versions only go forward: no need to queue behind writers for the lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _check_version(schema_version(conn), latest, db)  # another process may have migrated
        _apply(conn, db, current, [m for m in migrations if m.version > current])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (disk full) already rolled it back
            conn.execute("ROLLBACK")
        raise
    return schema_version(conn)


def _check_version(current: int, latest: int, db: Path) -> int:
    if current > latest:
        raise WorkspaceError(f"the catalog is at schema {current}, this facewright knows up to {latest}",
                             path=db, fix="upgrade facewright; it never downgrades a catalog")
    return current


def _apply(conn: sqlite3.Connection, db: Path, current: int, pending: Sequence[Migration]) -> None:
    """Back up, then run `pending` inside the caller's transaction (a failure rolls them all back)."""
    if pending and current > 0:
        _backup(db, db.with_name(f"{db.name}.bak-v{current}"))
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                 "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for migration in pending:
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                         (migration.version, migration.description, now()))
        except sqlite3.Error as exc:
            raise WorkspaceError(
                f"migration to schema {migration.version} ({migration.description}) failed: {exc}; "
                f"the catalog stays at schema {current}", path=db,
                fix="report this with the facewright version; the catalog and its backups are unchanged") from exc


def _backup(db: Path, target: Path) -> None:
    """Copy the committed catalog to `target`.

    Through a second connection: SQLite refuses to back up from a connection that holds a write
    transaction, and the WAL lets this reader see the last commit while the migrating one holds the lock.
    """
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


class Workspace:
    """A workspace folder and its catalog. Create with `Workspace.init`, open with `Workspace.open`."""

    def __init__(self, root: Path, conn: sqlite3.Connection):
        self.root = root
        self.conn = conn

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @classmethod
    def init(cls, root: str | Path | None = None, migrations: Sequence[Migration] = MIGRATIONS) -> Workspace:
        """Create the workspace (or upgrade an existing one) and return it opened."""
        root = resolve_root(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError("exists and is not a folder", path=root, fix="choose another --workspace")
        for folder in (root, root / "outputs", root / "runs"):
            folder.mkdir(parents=True, exist_ok=True)
        return cls._open(root, migrations)

    @classmethod
    def open(cls, root: str | Path | None = None, migrations: Sequence[Migration] = MIGRATIONS) -> Workspace:
        """Open an existing workspace, applying pending migrations."""
        root = resolve_root(root)
        if not (root / CATALOG).is_file():
            raise WorkspaceError("no facewright workspace here", path=root,
                                 fix=f"create one: facewright init --workspace {root}")
        return cls._open(root, migrations)

    @classmethod
    def _open(cls, root: Path, migrations: Sequence[Migration]) -> Workspace:
        try:
            conn = connect(root / CATALOG)
            migrate(conn, root / CATALOG, migrations)
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"the catalog cannot be read ({exc})", path=root / CATALOG,
                                 fix="restore it from a catalog.sqlite.bak-v* file beside it") from exc
        return cls(root, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self.conn)

    def identity_id(self, name: str) -> int:
        """The id of identity `name`, created if new."""
        self.conn.execute("INSERT OR IGNORE INTO identities (name, created_at) VALUES (?, ?)", (name, now()))
        return self.conn.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()[0]

    def add_media(self, path: Path, sha256: str, kind: str, **facts: float | int | None) -> int:
        """Record a source file (once per content hash); return its id. `facts`: width, height, frames..."""
        row = self.conn.execute("SELECT id FROM media WHERE sha256 = ?", (sha256,)).fetchone()
        if row:
            return row[0]
        columns = ("path", "sha256", "size_bytes", "kind", "added_at", *facts)
        values = (str(path.resolve()), sha256, path.stat().st_size, kind, now(), *facts.values())
        marks = ", ".join("?" * len(columns))
        return self.conn.execute(f"INSERT INTO media ({', '.join(columns)}) VALUES ({marks})", values).lastrowid

    def start_run(self, command: str, config: dict) -> int:
        """Record a run with its resolved options; the options are also saved as runs/<id>/config.json."""
        config_json = json.dumps(config, sort_keys=True, default=str)
        run_id = self.conn.execute(
            "INSERT INTO runs (command, config_json, facewright_version, status, started_at) "
            "VALUES (?, ?, ?, 'running', ?)", (command, config_json, __version__, now())).lastrowid
        folder = self.runs / str(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        return run_id

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        self.conn.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                          (status, error, now(), run_id))

    def record_mark(self, run_id: int, result: MarkResult, plan: MarkPlan, signer_fingerprint: str) -> int:
        """Record a marked output (outputs + marks rows); return the output id."""
        output_id = self.add_output(run_id, result.output, result.sha256, result.kind)
        parent_sha256 = sha256_file(plan.parent) if plan.parent else None
        self.conn.execute(
            "INSERT INTO marks (payload, output_id, run_id, path, sha256, kind, label, consent_ids_json, consent_salt, "
            "signer_fingerprint, model, model_sha256, parent_sha256, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (result.payload_hex, output_id, run_id, str(result.output.resolve()), result.sha256, result.kind,
             result.label, json.dumps(list(plan.consent_ids)), plan.salt.hex(), signer_fingerprint, plan.model,
             plan.model_sha256, parent_sha256, now()))
        return output_id

    def add_output(self, run_id: int, path: Path, sha256: str, kind: str, source_media_id: int | None = None) -> int:
        return self.conn.execute(
            "INSERT INTO outputs (run_id, source_media_id, path, sha256, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, source_media_id, str(path.resolve()), sha256, kind, now())).lastrowid
