"""The SQLite catalog file: connecting (WAL), migrating forward under the write lock, transactions."""
from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from facewright.errors import WorkspaceError
from facewright.files import private_file
from facewright.workspace.schema import MIGRATIONS, Migration


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(db: Path) -> sqlite3.Connection:
    _private(db)  # face embeddings, names, purposes: biometric and personal data, for the owner's eyes only
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
    with transaction(conn):
        current = _check_version(schema_version(conn), latest, db)  # another process may have migrated
        _apply(conn, db, current, [m for m in migrations if m.version > current])
    return schema_version(conn)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: all of the block's statements are committed, or none (an exception rolls back).

    IMMEDIATE takes the write lock at the start, so two processes never both read, then both write.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (disk full) already rolled it back
            conn.execute("ROLLBACK")
        raise


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
    _private(target)
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


def _private(db: Path) -> None:
    """Make the catalog file (new: empty, which SQLite takes for an empty database) readable by its owner only,
    and its -wal and -shm, which SQLite creates with the catalog's own mode."""
    private_file(db)
    for suffix in ("-wal", "-shm"):
        if (side := db.with_name(db.name + suffix)).exists():
            private_file(side)
