"""A workspace: one folder holding a SQLite catalog and the files the pipeline makes.

The catalog (WAL, foreign keys on) records identities, media, runs, outputs, facesets, faces and video
face tracks; later stages add their tables (consents, ...) as new migrations. Migrations only go
forward; the catalog is backed up before each upgrade, and a catalog made by a newer facewright is
refused, not downgraded. Each run records the process that owns it: opening the workspace closes, as
'interrupted', the runs left 'running' by a process that has since died (SIGKILL, a power cut).
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from facewright import __version__
from facewright.errors import WorkspaceError
from facewright.files import PRIVATE_DIR
from facewright.locks import Owner
from facewright.media.kind import MediaKind
from facewright.workspace.catalog import connect, migrate, now, schema_version, transaction
from facewright.workspace.schema import MIGRATIONS, Migration

__all__ = ["CATALOG", "DEFAULT_WORKSPACE", "MIGRATIONS", "Migration", "Run", "RunStatus", "Workspace", "now",
           "resolve_root", "transaction"]

DEFAULT_WORKSPACE = "facewright-workspace"
CATALOG = "catalog.sqlite"


class RunStatus(StrEnum):
    """A run's state in the catalog's `runs` table."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM


def resolve_root(root: str | Path | None = None) -> Path:
    """The workspace folder: the argument, else $FACEWRIGHT_WORKSPACE, else ./facewright-workspace."""
    return Path(root or os.environ.get("FACEWRIGHT_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()


def _make_folders(root: Path) -> None:
    """The workspace folder and its outputs/ and runs/; WorkspaceError naming it when they cannot be made."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=PRIVATE_DIR, exist_ok=True)  # a new workspace is its owner's alone; an old one keeps its mode
        for folder in (root / "outputs", root / "runs"):
            folder.mkdir(exist_ok=True)
    except OSError as exc:  # a read-only folder or disk, a file in the way, a full disk
        raise WorkspaceError(f"cannot create the workspace folder ({exc.strerror or exc})", path=root,
                             fix="choose a --workspace (or $FACEWRIGHT_WORKSPACE) in a folder you can write to"
                             ) from exc


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
        _make_folders(root)
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
        ws = cls(root, conn)
        ws.close_dead_runs()
        return ws

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

    def add_media(self, path: Path, sha256: str, kind: MediaKind, **facts: float | int | None) -> int:
        """Record a source file (once per content hash); return its id. `facts`: width, height, frames..."""
        row = self.conn.execute("SELECT id FROM media WHERE sha256 = ?", (sha256,)).fetchone()
        if row:
            return row[0]
        columns = ("path", "sha256", "size_bytes", "kind", "added_at", *facts)
        values = (str(path.resolve()), sha256, path.stat().st_size, kind, now(), *facts.values())
        marks = ", ".join("?" * len(columns))
        return self.conn.execute(f"INSERT INTO media ({', '.join(columns)}) VALUES ({marks})", values).lastrowid

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """`with ws.transaction():` the block's catalog writes land together or not at all."""
        return transaction(self.conn)

    @contextlib.contextmanager
    def run(self, command: str, config: dict) -> Iterator[Run]:
        """Record a run of `command` with its resolved options for the duration of the block.

        The options are also saved as runs/<id>/config.json. The run ends "done" (or what the block set with
        `run.end`), "interrupted" on Ctrl-C or SIGTERM, "failed" on any other exception, which goes on up. A
        process killed outright ends nothing: its pid, host and start time are recorded so that the next
        opening of the workspace sees it gone (close_dead_runs).
        """
        config_json = json.dumps(config, sort_keys=True, default=str)
        owner = Owner.current()
        run_id = self.conn.execute(
            "INSERT INTO runs (command, config_json, facewright_version, status, started_at, pid, host, pid_started) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (command, config_json, __version__, RunStatus.RUNNING, now(),
                                                owner.pid, owner.host, owner.started)).lastrowid
        folder = self.runs / str(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        run = Run(run_id, folder)
        try:
            yield run
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self._finish_run(run_id, RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED, repr(exc))
            raise
        self._finish_run(run_id, run.status, run.error)

    def close_dead_runs(self) -> list[int]:
        """Mark 'interrupted' the runs still 'running' whose process has died; return their ids.

        Runs of a live process, of another host (a shared folder: it cannot be checked from here) and from
        before runs had owners are left as they are.
        """
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
        if "pid" not in columns:  # a catalog held at an older schema (tests of migrations)
            return []
        rows = self.conn.execute("SELECT id, pid, host, pid_started FROM runs WHERE status = ? AND pid IS NOT NULL",
                                 (RunStatus.RUNNING,)).fetchall()
        owners = [(row["id"], Owner(row["pid"], row["host"], row["pid_started"])) for row in rows]
        dead = [(run_id, owner) for run_id, owner in owners if not owner.alive()]
        for run_id, owner in dead:
            error = (f"{owner.describe()} ended without closing the run (killed, or the machine stopped); "
                     "found when the workspace was next opened")
            with contextlib.suppress(sqlite3.OperationalError):  # a read-only catalog (verify): left for a writer
                self.conn.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?",
                                  (RunStatus.INTERRUPTED, error, now(), run_id, RunStatus.RUNNING))
        return [run_id for run_id, _ in dead]

    def _finish_run(self, run_id: int, status: RunStatus, error: str | None) -> None:
        self.conn.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                          (status, error, now(), run_id))

    def add_output(self, run_id: int, path: Path, sha256: str, kind: MediaKind,
                   source_media_id: int | None = None) -> int:
        return self.conn.execute(
            "INSERT INTO outputs (run_id, source_media_id, path, sha256, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, source_media_id, str(path.resolve()), sha256, kind, now())).lastrowid


@dataclass
class Run:
    """A run in progress (see Workspace.run): its catalog id, its folder, and how it will end."""

    id: int
    folder: Path
    status: RunStatus = RunStatus.DONE
    error: str | None = None

    def end(self, status: RunStatus, error: str | None = None) -> None:
        """End the run with `status` (instead of "done") when the block finishes without an exception."""
        self.status, self.error = status, error
