"""The server's job queue: one piece of heavy work at a time, each in its own spawned process.

Jobs are rows of the catalog (api.job_book), so a reload, a second tab and a restarted server all see the
same queue; the live part (each progress bar's count, rate and postfix) is held here and pushed to pages.
A process is started ahead of the next job (a spare, which has imported facewright while nothing ran), so a job
starts at once. Job processes run in their own session: Ctrl-C at the server's terminal reaches the server
only, which then stops each job once; a job whose server died stops itself (worker.watch_parent).
Cancel sends the job's process SIGINT, as Ctrl-C would: training finishes its step and saves, and every run
it recorded ends "interrupted"; after CANCEL_GRACE seconds it is terminated, then killed.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
from dataclasses import dataclass
from typing import Any

from facewright import api
from facewright.web import worker

CANCEL_GRACE = 60.0  # seconds a stopping job has to finish its step and save before SIGTERM
KILL_GRACE = 10.0  # then SIGKILL
EXIT_GRACE = 30.0  # seconds a job that reported its end has to exit
HISTORY = 30  # jobs shown
log = logging.getLogger("facewright.web")


class JobRefused(api.InputError):
    """A job that cannot be queued, cancelled or resumed as asked."""


@dataclass
class Spare:
    """A job process started ahead: it imports facewright, then waits on `pipe` for its one job."""

    process: Any
    pipe: Any
    events: Any


class JobRunner:
    def __init__(self, workspace, *, debug: bool = False):
        self.workspace, self.debug = workspace, debug
        self.book = api.job_book(workspace=workspace)
        self.spawn = multiprocessing.get_context("spawn")
        self.live: dict[int, dict[str, Any]] = {}  # job id -> {"bars": {desc: bar state}}
        self.processes: dict[int, Any] = {}
        self.cancelled: set[int] = set()
        self.spare: Spare | None = None
        self.version = 0
        self.changed = threading.Condition()
        self.lock = threading.Lock()  # self.live and self.cancelled, shared by the pages' threads and the runner's
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="facewright-jobs", daemon=True)

    # --- the pages' side ---------------------------------------------------------------------------------------

    def start(self) -> list[int]:
        """Close the jobs a previous server left running, then take queued ones; return the ids closed."""
        closed = [job_id for job_id, _ in self.book.interrupt_unfinished()]
        self._ensure_spare()
        self.thread.start()
        return closed

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs and ask the running one to stop (it saves, as on Ctrl-C)."""
        self.stopping.set()
        self._bump()
        for job_id in list(self.processes):
            self._signal(job_id, signal.SIGINT)
        if self.thread.is_alive():
            self.thread.join(timeout)
        for job_id in list(self.processes):  # still going after the grace: it is ended, not left behind
            self._escalate(job_id, signal.SIGKILL, None)
        if self.spare is not None:
            with contextlib.suppress(OSError, ValueError):
                self.spare.pipe.send(None)
            self.spare.process.join(5)
            if self.spare.process.is_alive():
                self.spare.process.kill()
        self._bump()

    def submit(self, kind: str, params: dict[str, Any]) -> api.JobRecord:
        if kind not in worker.TASKS:
            raise JobRefused(f"no job kind {kind!r}", fix=f"one of {', '.join(worker.TASKS)}")
        record = self.book.add(kind, params)
        self._bump()
        return record

    def cancel(self, job_id: int) -> api.JobRecord:
        """Cancel a queued job, or ask a running one to stop (once: a second SIGINT would stop training before
        it saves)."""
        record = self._get(job_id)
        if record.status == api.JobStatus.QUEUED and self.book.cancel_queued(job_id):
            self._bump()
            return self.book.get(job_id)
        record = self.book.get(job_id)
        if record.status != api.JobStatus.RUNNING:
            raise JobRefused(f"job {job_id} is {record.status}, not queued or running", fix="reload the page")
        with self.lock:
            first = job_id not in self.cancelled
            self.cancelled.add(job_id)
        if first:
            self._signal(job_id, signal.SIGINT)
            _later(CANCEL_GRACE, self._escalate, job_id, signal.SIGTERM, KILL_GRACE)
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
        records = self.book.list(HISTORY)
        with self.lock:
            live = {job_id: {"bars": {k: dict(v) for k, v in state["bars"].items()}}
                    for job_id, state in self.live.items()}
        for record in records:
            row = record.to_dict()
            row["live"] = live.get(record.id)
            row["resumable"] = record.kind in worker.RESUMABLE and record.status in (
                api.JobStatus.INTERRUPTED, api.JobStatus.CANCELLED, api.JobStatus.FAILED)
            jobs.append(row)
        return {"version": self.version, "jobs": jobs}

    def wait(self, version: int, timeout: float) -> int:
        """Block until the state is newer than `version` or `timeout` passes; return the current version."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != version or self.stopping.is_set(), timeout)
            return self.version

    # --- the runner thread's side ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                record = self.book.claim_next(os.getpid())
            except api.FacewrightError as exc:  # the catalog busy past its timeout, say: try again shortly
                log.warning("could not read the job queue: %s", exc)
                record = None
            if record is None:
                with self.changed:
                    self.changed.wait(0.5)
                continue
            try:
                self._run(record)
            except Exception as exc:  # noqa: BLE001 - the queue must outlive one job's failure to start or end
                log.exception("job %s could not be run", record.id)
                with contextlib.suppress(Exception):
                    self.book.end(record.id, api.JobStatus.FAILED, error=worker.error_fields(exc))
            finally:
                self.processes.pop(record.id, None)
                with self.lock:
                    self.cancelled.discard(record.id)
                    for old in sorted(self.live)[:-HISTORY]:
                        del self.live[old]
                self._bump()
                if not self.stopping.is_set():
                    self._ensure_spare()

    def _run(self, record: api.JobRecord) -> None:
        spare = self._take_spare()
        with self.lock:
            self.live[record.id] = {"bars": {}}
        self.processes[record.id] = spare.process
        self.book.set_pid(record.id, spare.process.pid)
        spare.pipe.send((record.kind, record.params, str(self.workspace), self.debug))
        self._ensure_spare()  # the next job's process imports facewright while this one works
        with self.lock:
            stopped_early = record.id in self.cancelled  # cancelled between the claim and now
        if stopped_early:
            self._signal(record.id, signal.SIGINT)
        self._bump()
        kind, value = self._pump(record.id, spare.process, spare.events)
        with self.lock:
            stopped = record.id in self.cancelled
        if kind == "done":
            self.book.end(record.id, api.JobStatus.DONE, result=value)
        elif stopped or kind == "cancelled":
            self.book.end(record.id, api.JobStatus.CANCELLED if stopped else api.JobStatus.INTERRUPTED,
                          error={"type": "Stopped", "message": "stopped by the user" if stopped else
                                 "stopped with the server", "fix": "resume it to continue where it stopped"})
        else:
            self.book.end(record.id, api.JobStatus.FAILED, error=value)

    def _pump(self, job_id: int, process, events) -> tuple[str, Any]:
        """Relay the job's events until it reports an end or its process dies; then see the process gone."""
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
                with self.lock:
                    self.live[job_id]["bars"][value["desc"]] = value
                self._bump()
                continue
            process.join(EXIT_GRACE)
            if process.is_alive():
                self._escalate(job_id, signal.SIGKILL, None)
                process.join(KILL_GRACE)
            return kind, value

    def _ensure_spare(self) -> None:
        if self.spare is not None and self.spare.process.is_alive():
            return
        receiver, sender = self.spawn.Pipe(duplex=False)
        events = self.spawn.Queue()
        # not a daemon: a job may start its own worker pool (a long video in chunks), which a daemon may not
        process = self.spawn.Process(target=worker.serve_one, name="facewright-job",
                                     args=(receiver, events, os.getpid()), daemon=False)
        process.start()
        receiver.close()
        self.spare = Spare(process, sender, events)

    def _take_spare(self) -> Spare:
        self._ensure_spare()
        spare, self.spare = self.spare, None
        return spare

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
