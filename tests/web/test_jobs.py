"""The job queue with real work: a training stopped from the page finishes its step and saves, as Ctrl-C does,
and its resume continues from that checkpoint; a job whose process dies is reported, not left running."""
from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from facewright import api
from facewright.web.jobs import JobRunner
from facewright.workspace import Workspace

LONG = {"model": "test-ae", "resolution": 64, "batch": 4, "steps": 100_000, "warmup": 2, "preview_every": 0,
        "log_every": 1}


@pytest.fixture
def runner(pair_ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(pair_ws, root)
    runner = JobRunner(root)
    runner.start()
    yield runner
    runner.stop()


def wait_for(runner, job_id, test, seconds=120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = next(j for j in runner.snapshot()["jobs"] if j["id"] == job_id)
        if test(row):
            return row
        runner.wait(runner.version, 0.5)
    raise AssertionError(f"job {job_id} never got there: {row}")


def train_step(row) -> int:
    bar = (row.get("live") or {}).get("bars", {}).get("train")
    return int(bar["n"]) if bar else -1


def test_a_stopped_training_saves_its_step_and_its_resume_continues_from_it(runner):
    # Job processes are not daemons (a long video's chunks run on a pool the job starts), live in a session of
    # their own (Ctrl-C at the server's terminal is passed on once, by the server), and one is started ahead.
    spare = runner.spare.process
    assert spare.is_alive() and not spare.daemon
    deadline = time.monotonic() + 30
    while os.getsid(spare.pid) != spare.pid and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.getsid(spare.pid) == spare.pid != os.getsid(os.getpid())

    job = runner.submit("train", {"src": "anna", "dst": "ben", "name": "web-stop", "options": LONG})
    wait_for(runner, job.id, lambda row: train_step(row) >= 3)
    runner.cancel(job.id)
    runner.cancel(job.id)  # a second click: still one SIGINT (a second would stop before saving)
    ended = wait_for(runner, job.id, lambda row: row["status"] not in ("queued", "running"))
    assert ended["status"] == "cancelled" and ended["resumable"]
    [model] = [m for m in api.list_trained_models(workspace=runner.workspace) if m.name == "web-stop"]
    assert model.step >= 3  # the checkpoint of the step it stopped at
    with Workspace.open(runner.workspace) as ws:
        statuses = [r["status"] for r in ws.conn.execute("SELECT status FROM runs WHERE command = 'train'")]
    assert statuses[-1] == "interrupted"

    again = runner.resume(job.id)
    assert again.params["resume"] is True
    resumed = wait_for(runner, again.id, lambda row: train_step(row) > model.step)
    assert resumed["live"]["bars"]["train"]["initial"] == model.step  # it went on from the saved step
    runner.cancel(again.id)
    assert wait_for(runner, again.id, lambda row: row["status"] != "running")["status"] == "cancelled"


def test_a_job_whose_process_dies_is_failed_with_why(runner):
    job = runner.submit("train", {"src": "anna", "dst": "ben", "name": "web-killed", "options": LONG})
    wait_for(runner, job.id, lambda row: train_step(row) >= 1)
    os.kill(runner.processes[job.id].pid, signal.SIGKILL)
    ended = wait_for(runner, job.id, lambda row: row["status"] != "running")
    assert ended["status"] == "failed" and ended["error"]["type"] == "WorkerLost" and ended["resumable"]
