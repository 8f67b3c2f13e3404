"""What the workspace has done: its recent runs and the outputs they wrote, read from the catalog."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facewright.workspace import Workspace


@dataclass(frozen=True)
class RunRecord:
    id: int
    command: str
    status: str
    started_at: str
    finished_at: str | None
    error: str | None


@dataclass(frozen=True)
class OutputRecord:
    id: int
    run_id: int
    path: Path
    kind: str  # image or video
    created_at: str
    label: str | None  # the visible label's text kind; None for an output that was never marked
    consents: tuple[str, ...]
    model: str | None
    source: Path | None  # the media it was made from (a swap's target footage)

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def recent_runs(ws: Workspace, limit: int = 20) -> list[RunRecord]:
    rows = ws.conn.execute("SELECT id, command, status, started_at, finished_at, error FROM runs "
                           "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [RunRecord(*row) for row in rows]


def recent_outputs(ws: Workspace, limit: int = 50) -> list[OutputRecord]:
    """The newest outputs, newest first, with their mark (label, consents, model) where they have one."""
    return _outputs(ws, "ORDER BY o.id DESC LIMIT ?", (limit,))


def output_by_id(ws: Workspace, output_id: int) -> OutputRecord | None:
    found = _outputs(ws, "WHERE o.id = ?", (output_id,))
    return found[0] if found else None


def output_by_path(ws: Workspace, path: Path) -> OutputRecord | None:
    """The newest output recorded at `path` (outputs are recorded by their resolved path)."""
    found = _outputs(ws, "WHERE o.path = ? ORDER BY o.id DESC LIMIT 1", (str(path.resolve()),))
    return found[0] if found else None


def _outputs(ws: Workspace, clause: str, args: tuple) -> list[OutputRecord]:
    rows = ws.conn.execute(
        # the source: as recorded, else the catalog's media file whose content the mark names as the parent
        "SELECT o.id, o.run_id, o.path, o.kind, o.created_at, k.label, k.consent_ids_json, k.model, "
        "COALESCE(m.path, (SELECT p.path FROM media p WHERE p.sha256 = k.parent_sha256)) AS src "
        "FROM outputs o LEFT JOIN marks k ON k.output_id = o.id LEFT JOIN media m ON m.id = o.source_media_id "
        + clause, args).fetchall()
    return [OutputRecord(r["id"], r["run_id"], Path(r["path"]), r["kind"], r["created_at"], r["label"],
                         tuple(json.loads(r["consent_ids_json"])) if r["consent_ids_json"] else (), r["model"],
                         Path(r["src"]) if r["src"] else None) for r in rows]
