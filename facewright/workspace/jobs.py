"""The web UI's job queue, as rows of the catalog's `jobs` table (schema 8).

A job is one piece of long work the UI asked for (extract, train, swap, score, mask training): its kind, its
options, where it stands and how it ended. The work itself records its runs as the CLI's would; the job row
says who asked and what came of it, so a reload, a second tab or a restarted server shows the same queue.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from facewright.workspace import Workspace, now


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped by the user: a training run saved its step first
    INTERRUPTED = "interrupted"  # the server stopped while it ran or waited

    @property
    def ended(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    params: dict[str, Any]
    status: JobStatus
    created_at: str
    started_at: str | None
    finished_at: str | None
    pid: int | None
    error: dict[str, Any] | None  # {"type", "message", "path", "fix"}
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "params": self.params, "status": str(self.status),
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "error": self.error, "result": self.result}


def add_job(ws: Workspace, kind: str, params: dict[str, Any]) -> JobRecord:
    job_id = ws.conn.execute("INSERT INTO jobs (kind, params_json, status, created_at) VALUES (?, ?, ?, ?)",
                             (kind, json.dumps(params, sort_keys=True), JobStatus.QUEUED, now())).lastrowid
    return get_job(ws, job_id)


def get_job(ws: Workspace, job_id: int) -> JobRecord:
    row = ws.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise KeyError(job_id)
    return _record(row)


def list_jobs(ws: Workspace, limit: int = 50) -> list[JobRecord]:
    """The newest `limit` jobs, newest first."""
    rows = ws.conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_record(row) for row in rows]


def claim_next(ws: Workspace, pid: int) -> JobRecord | None:
    """Take the oldest queued job and mark it running under `pid`, in one transaction: two runners never take the
    same job, and a job cancelled a moment before is not taken."""
    with ws.transaction():
        row = ws.conn.execute("SELECT id FROM jobs WHERE status = ? ORDER BY id LIMIT 1",
                              (JobStatus.QUEUED,)).fetchone()
        if row is None:
            return None
        ws.conn.execute("UPDATE jobs SET status = ?, started_at = ?, pid = ? WHERE id = ?",
                        (JobStatus.RUNNING, now(), pid, row[0]))
    return get_job(ws, row[0])


def set_pid(ws: Workspace, job_id: int, pid: int) -> None:
    ws.conn.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))


def cancel_queued(ws: Workspace, job_id: int) -> bool:
    """Cancel the job if it is still queued; False when it was claimed (or ended) first."""
    return ws.conn.execute("UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
                           (JobStatus.CANCELLED, now(), job_id, JobStatus.QUEUED)).rowcount == 1


def end_job(ws: Workspace, job_id: int, status: JobStatus, *, error: dict[str, Any] | None = None,
            result: dict[str, Any] | None = None) -> None:
    ws.conn.execute("UPDATE jobs SET status = ?, finished_at = ?, error_json = ?, result_json = ? WHERE id = ?",
                    (status, now(), json.dumps(error) if error else None,
                     json.dumps(result, default=str) if result is not None else None, job_id))


def interrupt_unfinished(ws: Workspace) -> list[tuple[int, int | None]]:
    """Close as 'interrupted' the jobs a stopped server left running; return (id, pid) of each. Queued jobs stay
    queued: the next server runs them."""
    rows = [(row[0], row[1]) for row in ws.conn.execute("SELECT id, pid FROM jobs WHERE status = ?",
                                                        (JobStatus.RUNNING,))]
    error = json.dumps({"type": "Interrupted", "message": "the server stopped before this job ended",
                        "fix": "resume it (training, extraction and swaps continue where they were)"})
    ws.conn.executemany("UPDATE jobs SET status = ?, finished_at = ?, error_json = ? WHERE id = ?",
                        [(JobStatus.INTERRUPTED, now(), error, job_id) for job_id, _ in rows])
    return rows


def _record(row) -> JobRecord:
    return JobRecord(row["id"], row["kind"], json.loads(row["params_json"]), JobStatus(row["status"]),
                     row["created_at"], row["started_at"], row["finished_at"], row["pid"],
                     json.loads(row["error_json"]) if row["error_json"] else None,
                     json.loads(row["result_json"]) if row["result_json"] else None)


class JobBook:
    """The jobs of the workspace at `root`, each call in its own short opening of the catalog: a long-lived
    server holds no connection across threads, and the work's processes write the same catalog meanwhile."""

    def __init__(self, root: Path):
        self.root = root

    def add(self, kind: str, params: dict[str, Any]) -> JobRecord:
        with Workspace.open(self.root) as ws:
            return add_job(ws, kind, params)

    def get(self, job_id: int) -> JobRecord:
        with Workspace.open(self.root) as ws:
            return get_job(ws, job_id)

    def list(self, limit: int = 50) -> list[JobRecord]:
        with Workspace.open(self.root) as ws:
            return list_jobs(ws, limit)

    def claim_next(self, pid: int) -> JobRecord | None:
        with Workspace.open(self.root) as ws:
            return claim_next(ws, pid)

    def set_pid(self, job_id: int, pid: int) -> None:
        with Workspace.open(self.root) as ws:
            set_pid(ws, job_id, pid)

    def cancel_queued(self, job_id: int) -> bool:
        with Workspace.open(self.root) as ws:
            return cancel_queued(ws, job_id)

    def end(self, job_id: int, status: JobStatus, *, error: dict[str, Any] | None = None,
            result: dict[str, Any] | None = None) -> None:
        with Workspace.open(self.root) as ws:
            end_job(ws, job_id, status, error=error, result=result)

    def interrupt_unfinished(self) -> list[tuple[int, int | None]]:
        with Workspace.open(self.root) as ws:
            return interrupt_unfinished(ws)
