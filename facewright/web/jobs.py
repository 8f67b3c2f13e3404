"""The server's job queue: one piece of heavy work at a time, each in its own spawned process.

Jobs are rows of the catalog (api.job_book), so a reload, a second tab and a restarted server all see the
same queue; the live part (each progress bar's count, rate and postfix) is held here and pushed to pages.
Cancel sends the job's process SIGINT, as Ctrl-C would: training finishes its step and saves, and every run
it recorded ends "interrupted"; after CANCEL_GRACE seconds it is terminated.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from typing import Any

from facewright import api
from facewright.web import worker

CANCEL_GRACE = 60.0  # seconds a stopping job has to finish its step and save before SIGTERM
KILL_GRACE = 10.0  # then SIGKILL
HISTORY = 30  # jobs shown


class JobRefused(api.InputError):
    """A job that cannot be queued, cancelled or resumed as asked."""


class JobRunner:
    def __init__(self, workspace, *, debug: bool = False, concurrency: int = 1):
        self.workspace, self.debug = workspace, debug
        self.book = api.job_book(workspace=workspace)
        self.spawn = multiprocessing.get_context("spawn")
        self.live: dict[int, dict[str, Any]] = {}  # job id -> {"bars": {desc: bar state}}
        self.processes: dict[int, Any] = {}
        self.cancelled: set[int] = set()
        self.version = 0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, name=f"jobs-{i}", daemon=True)
                        for i in range(max(1, concurrency))]
        self.claim = threading.Lock()

    # --- the pages' side ---------------------------------------------------------------------------------------

    def start(self) -> list[int]:
        """Close the jobs a previous server left unfinished, then start taking queued ones; return those closed."""
        closed = self.book.interrupt_unfinished()
        for thread in self.threads:
            thread.start()
        return closed

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs and ask the running ones to stop (they save, as on Ctrl-C)."""
        self.stopping.set()
        for job_id in list(self.processes):
            self._signal(job_id, signal.SIGINT)
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout)
        self._bump()

    def submit(self, kind: str, params: dict[str, Any]) -> api.JobRecord:
        if kind not in worker.TASKS:
            raise JobRefused(f"no job kind {kind!r}", fix=f"one of {', '.join(worker.TASKS)}")
        record = self.book.add(kind, params)
        self._bump()
        return record

    def cancel(self, job_id: int) -> api.JobRecord:
        record = self._get(job_id)
        if record.status == api.JobStatus.QUEUED:
            with self.claim:
                self.book.end(job_id, api.JobStatus.CANCELLED)
        elif record.status == api.JobStatus.RUNNING and job_id in self.processes:
            self.cancelled.add(job_id)
            self._signal(job_id, signal.SIGINT)
            _later(CANCEL_GRACE, self._escalate, job_id, signal.SIGTERM, KILL_GRACE)
        else:
            raise JobRefused(f"job {job_id} is {record.status}, not queued or running", fix="reload the page")
        self._bump()
        return self.book.get(job_id)

    def resume(self, job_id: int) -> api.JobRecord:
        """Queue an ended job again, continuing where it stopped (training from its last checkpoint, extraction
        skipping finished sources, a swap keeping its finished chunks)."""
        record = self._get(job_id)
        if record.kind not in worker.RESUMABLE or record.status not in (
                api.JobStatus.INTERRUPTED, api.JobStatus.CANCELLED, api.JobStatus.FAILED):
            raise JobRefused(f"job {job_id} ({record.kind}, {record.status}) cannot be resumed",
                             fix="only an interrupted, cancelled or failed extract, train, swap or mask train can")
        return self.submit(record.kind, {**record.params, "resume": True})

    def snapshot(self) -> dict[str, Any]:
        jobs = []
        for record in self.book.list(HISTORY):
            row = record.to_dict()
            row["live"] = self.live.get(record.id)
            row["resumable"] = record.kind in worker.RESUMABLE and record.status in (
                api.JobStatus.INTERRUPTED, api.JobStatus.CANCELLED, api.JobStatus.FAILED)
            jobs.append(row)
        return {"version": self.version, "jobs": jobs}

    def wait(self, version: int, timeout: float) -> int:
        """Block until the state is newer than `version` or `timeout` passes; return the current version."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != version or self.stopping.is_set(), timeout)
            return self.version

    # --- the worker threads' side ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopping.is_set():
            record = self._next()
            if record is None:
                with self.changed:
                    self.changed.wait(0.5)
                continue
            self._run(record)

    def _next(self) -> api.JobRecord | None:
        with self.claim:  # two threads never take the same job; a cancel of a queued job waits for this
            queued = [r for r in self.book.list(HISTORY * 10) if r.status == api.JobStatus.QUEUED]
            if not queued:
                return None
            record = queued[-1]  # the oldest
            self.book.start(record.id, os.getpid())
            return record

    def _run(self, record: api.JobRecord) -> None:
        events = self.spawn.Queue()
        process = self.spawn.Process(target=worker.run, name=f"facewright-job-{record.id}", daemon=True,
                                     args=(record.kind, record.params, str(self.workspace), events, self.debug))
        self.live[record.id] = {"bars": {}}
        try:
            process.start()
        except OSError as exc:
            self.book.end(record.id, api.JobStatus.FAILED, error=worker.error_fields(exc))
            return
        self.processes[record.id] = process
        self.book.start(record.id, process.pid)
        self._bump()
        outcome = self._pump(record.id, process, events)
        self.processes.pop(record.id, None)
        kind, value = outcome
        if kind == "done":
            self.book.end(record.id, api.JobStatus.DONE, result=value)
        elif kind == "cancelled":
            stopped = record.id in self.cancelled
            self.book.end(record.id, api.JobStatus.CANCELLED if stopped else api.JobStatus.INTERRUPTED,
                          error={"type": "Stopped", "message": "stopped by the user" if stopped else
                                 "stopped with the server", "fix": "resume it to continue where it stopped"})
        else:
            self.book.end(record.id, api.JobStatus.FAILED, error=value)
        self.cancelled.discard(record.id)
        self._bump()

    def _pump(self, job_id: int, process, events) -> tuple[str, Any]:
        """Relay the job's events until it reports an end or its process dies."""
        while True:
            try:
                kind, value = events.get(timeout=0.2)
            except queue.Empty:
                if not process.is_alive():
                    process.join()
                    return "failed", {"type": "WorkerLost", "message": f"the job's process ended without reporting "
                                      f"(exit code {process.exitcode})", "path": None,
                                      "fix": "see the server's log; resume the job to continue"}
                continue
            if kind == "bar":
                self.live[job_id]["bars"][value["desc"]] = value
                self._bump()
                continue
            process.join(30)
            return kind, value

    def _get(self, job_id: int) -> api.JobRecord:
        try:
            return self.book.get(job_id)
        except KeyError:
            raise JobRefused(f"no job {job_id}", fix="reload the page") from None

    def _signal(self, job_id: int, number: int) -> None:
        process = self.processes.get(job_id)
        if process is not None and process.pid is not None and process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, number)

    def _escalate(self, job_id: int, number: int, then: float | None) -> None:
        if job_id in self.processes:
            self._signal(job_id, number)
            if then is not None:
                _later(then, self._escalate, job_id, signal.SIGKILL, None)

    def _bump(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()


def _later(seconds: float, function, *args) -> None:
    timer = threading.Timer(seconds, function, args)
    timer.daemon = True  # a pending escalation never keeps the server from exiting
    timer.start()
