"""The process a web job runs in: one API call, its progress sent back to the server as events.

Each job gets a fresh spawned process: a job's memory (models, frames) goes with it, one job's crash is not the
server's, and a job is stopped the way the CLI is: SIGINT, which makes training finish its step and save, and
every run end "interrupted". Events are tuples on a multiprocessing queue: ("bar", {...}) while it runs, then
one of ("done", result), ("failed", error), ("cancelled", None).
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from facewright import api

BAR_SECONDS = 0.25  # at most this often per bar: a 60 fps extraction would flood the queue


class QueueBar:
    """A progress bar (facewright.progress.Bar) whose state goes to the server's event queue."""

    def __init__(self, events, total: float | None, desc: str, unit: str, initial: float):
        self.events, self.sent = events, 0.0
        self.state: dict[str, Any] = {"desc": desc, "unit": unit, "total": total, "n": initial, "initial": initial,
                                      "postfix": {}, "started": time.time(), "rate": 0.0, "closed": False}

    def update(self, n: int = 1) -> None:
        self.state["n"] += n
        self._send()

    def set_postfix(self, **values: Any) -> None:
        values.pop("refresh", None)
        self.state["postfix"] = {k: str(v) for k, v in values.items()}
        self._send()

    def close(self) -> None:
        self.state["closed"] = True
        self._send(force=True)

    def __enter__(self) -> QueueBar:
        self._send(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self.sent >= BAR_SECONDS:
            self.sent = now
            done = self.state["n"] - self.state["initial"]
            self.state["rate"] = done / max(now - self.state["started"], 1e-6)
            self.events.put(("bar", dict(self.state)))


def queue_progress(events):
    def factory(*, total: float | None, desc: str, unit: str = "it", initial: float = 0) -> QueueBar:
        return QueueBar(events, total, desc, unit, initial)
    return factory


def error_fields(exc: BaseException, debug: bool = False) -> dict[str, Any]:
    if isinstance(exc, api.FacewrightError):
        fields = {"type": type(exc).__name__, "message": exc.message, "path": str(exc.path) if exc.path else None,
                  "fix": exc.fix, "consent": isinstance(exc, api.ConsentError)}
    else:
        fields = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "path": None,
                  "fix": "see the server's log; run with --debug for the traceback", "consent": False}
    if debug:
        fields["trace"] = "".join(traceback.format_exception(exc))
    return fields


PARENT_CHECK = 1.0  # seconds between looks at whether the server is still there


def serve_one(pipe, events, parent: int) -> None:
    """A spare job process: in its own session (the server's terminal Ctrl-C is the server's to pass on, once),
    watching its server, waiting for one job. The imports above happened while nothing ran."""
    os.setsid()
    threading.Thread(target=watch_parent, args=(parent,), name="watch-server", daemon=True).start()
    try:
        job = pipe.recv()
    except (EOFError, OSError, KeyboardInterrupt):  # the server went away before giving it a job
        return
    if job is not None:
        kind, params, workspace, debug = job
        run(kind, params, workspace, events, debug)


def watch_parent(parent: int) -> None:
    """Stop the job (SIGINT: it saves, as on Ctrl-C) once the server that started it is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    os.kill(os.getpid(), signal.SIGINT)


def run(kind: str, params: dict[str, Any], workspace: str, events, debug: bool = False) -> None:
    """The job's process: run `kind` with `params` in `workspace` and report how it went on `events`."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a stop request is a KeyboardInterrupt, as at a shell
    try:
        result = TASKS[kind](params, Path(workspace), queue_progress(events))
    except KeyboardInterrupt:
        events.put(("cancelled", None))
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the page, typed or not
        events.put(("failed", error_fields(exc, debug)))
    else:
        events.put(("done", result))


# --- the jobs: params (JSON from the page) -> one API call -> a JSON-able summary ------------------------------


def _extract(params: dict, workspace: Path, progress) -> dict:
    report = api.extract(params["inputs"], params["identity"], workspace=workspace, progress=progress,
                         **params.get("options", {}))
    return {"faceset": report.faceset, "counts": report.counts, "seconds": round(report.seconds, 1),
            "other_identities": report.other_identities}


def _train(params: dict, workspace: Path, progress) -> dict:
    result = api.train(params["src"], params["dst"], name=params.get("name") or None,
                       resume=params.get("resume", False), preset=params.get("preset") or None,
                       workspace=workspace, progress=progress,
                       **params.get("options", {}))
    return {"model": result.folder.name, "step": result.step, "last_loss": result.last_loss,
            "samples_per_second": round(result.samples_per_second, 2), "stopped": result.stopped,
            "seconds": round(result.seconds, 1)}


def _swap(params: dict, workspace: Path, progress) -> dict:
    output = params.get("output") or None
    [result] = api.swap(params["input"], Path(workspace) / "outputs" / output if output else None,
                        model=params.get("model_folder") or params["model"], resume=params.get("resume", False),
                        workspace=workspace,
                        progress=progress, **params.get("options", {}))
    if isinstance(result, api.SwapFailure):
        raise result.error
    return {"output": str(result.output), "output_ref": _ref(result.output, workspace), "frames": result.frames,
            "frames_swapped": result.frames_swapped, "fps": round(result.fps, 2), "payload": result.payload_hex,
            "notes": list(result.notes)}


def _preview(params: dict, workspace: Path, progress) -> dict:
    frames = api.swap_preview(params["input"], model=params.get("model_folder") or params["model"],
                              frames=int(params.get("frames", 3)),
                              workspace=workspace, progress=progress, **params.get("options", {}))
    return {"frames": [{"index": f.index, "before": _ref(f.before, workspace), "after": _ref(f.after, workspace)}
                       for f in frames]}


def _score(params: dict, workspace: Path, progress) -> dict:
    report = api.score(params["output"], source=params["source"], target_video=params["target_video"],
                       workspace=workspace, progress=progress, report=params.get("report") or None,
                       **params.get("options", {}))
    summary = {key: value for key, value in report.to_dict().items() if key != "frames"}  # per-frame rows: large
    plots = [_ref(Path(path), workspace) for path in report.files.values() if str(path).endswith(".png")]
    return {**summary, "headline": report.headline(), "plots": [ref for ref in plots if ref]}


def _mask_train(params: dict, workspace: Path, progress) -> dict:
    result = api.train_mask(params["faceset"], name=params.get("name") or None, resume=params.get("resume", False),
                            workspace=workspace, progress=progress, **params.get("options", {}))
    return {"model": result.folder.name, "steps": result.steps, "iou": result.iou, "seconds": round(result.seconds, 1)}


def _ref(path: Path, workspace: Path) -> str | None:
    """`path` inside the workspace as the pages name it (POSIX, relative), or None when it lies elsewhere."""
    try:
        return Path(path).resolve().relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:
        return None


TASKS = {"extract": _extract, "train": _train, "swap": _swap, "preview": _preview, "score": _score,
         "mask train": _mask_train}
RESUMABLE = ("extract", "train", "swap", "mask train")  # a re-run continues where the last one stopped
