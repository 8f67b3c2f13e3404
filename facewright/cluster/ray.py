"""`RayPool`: the items of a `Pool.map` as Ray tasks, on a cluster of machines or a Ray started on this one.

Ray is the optional extra `pip install 'facewright[ray]'`: this module imports it only when a pool is made, so
`import facewright.cluster` works without it. Each `map` puts `context` into Ray's object store once and sends
each item as a task asking for `cpus_per_task` CPUs and `gpus_per_task` GPUs. On a cluster with GPUs a `chain`
keeps its two stages apart: the first (a swap's model) as tasks asking for `render_gpus` GPUs, the second (the
compositing and encoding) as CPU tasks, each started as soon as its first stage's result is ready, which Ray
hands from the GPU node to the CPU one through its object store. A task whose worker process dies
(killed, out of memory, its node lost) is run again, up to `max_retries` times; an error that `fn` raises is
not retried and reaches the driver as itself (an `OptionError` stays an `OptionError`, with its path and fix).

Every node must run the same facewright and see the workspace at the same path (shared storage): a task
reads its inputs and writes its outputs there, atomically (`facewright.files.atomic_path`), so a retried task
overwrites nothing half-written. Tasks never touch the catalog or the signing key: the driver does.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

from facewright.errors import FacewrightError, NoDeviceError, OptionError, WorkerLostError
from facewright.workers import chained, cores, one_thread_worker

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")

INSTALL = "pip install 'facewright[ray]'"
LOGS = "/tmp/ray/session_latest/logs"  # each node's worker logs, where `ray start` left its default temp dir


class RayPool:
    """Items as Ray tasks. `address`: a cluster to join ("auto" on a node of it, or "HOST:6379"); None: the one
    at $RAY_ADDRESS, else a Ray started here (see `_connect`) with `local_cpus` CPUs (default: every core this
    process may use), stopped by `close`. A process already connected to Ray (`ray.init` called before) keeps
    that connection, and `close` leaves it open: so a second pool with other resources per task can share it.

    `workers`: at most this many tasks at once (default: as many as the cluster's CPUs, or GPUs where tasks ask
    for GPUs, can hold; counted when the pool is made). `render_gpus`: what a chain's first stage asks for (None:
    1 where the cluster has a GPU, else 0: both stages in one CPU task). `local_gpus`: the GPUs of a Ray started
    here (None: those it finds).
    """

    def __init__(self, address: str | None = None, *, gpus_per_task: float = 0, cpus_per_task: float = 1,
                 max_retries: int = 3, workers: int | None = None, local_cpus: int | None = None,
                 render_gpus: float | None = None, local_gpus: int | None = None):
        _check_options(gpus_per_task, cpus_per_task, max_retries, workers)
        if render_gpus is not None and render_gpus < 0:
            raise OptionError(f"render_gpus must be 0 or more, got {render_gpus}", fix="give 0 (no GPU) or more")
        self._ray = _import_ray()
        self._owner = _connect(self._ray, address or os.environ.get("RAY_ADDRESS"), local_cpus, local_gpus)
        self.max_retries = max_retries
        self._limit = workers
        try:
            resources = self._ray.cluster_resources()
            self.workers = workers or _capacity(resources, cpus_per_task, gpus_per_task)
            self.render_gpus = (1.0 if resources.get("GPU") else 0.0) if render_gpus is None else render_gpus
            if self.render_gpus:
                _capacity(resources, 1, self.render_gpus)  # no GPU: the typed error, now
        except BaseException:
            self.close()
            raise
        self.apart = self.render_gpus > 0
        remote = self._ray.remote(_run)
        self._task = remote.options(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries,
                                    retry_exceptions=False)
        self._render = remote.options(num_cpus=1, num_gpus=self.render_gpus, max_retries=max_retries,
                                      retry_exceptions=False)

    def map(self, fn: Callable[[C, T], R], context: C, items: Sequence[T],
            done: Callable[[int, R], None] | None = None) -> list[R]:
        """[fn(context, item) for item in items] as Ray tasks; `done(i, result)` as each finishes. On the first
        error the tasks not started yet are cancelled, the running ones killed (`_stop`), and once none runs on the
        error is raised."""
        shared = self._ray.put(context)  # once, not once per task
        return self._run_all(items, lambda item: (self._task.remote(fn, shared, item),), done)

    def chain(self, first: tuple[Callable[[C, T], M], C], second: tuple[Callable[[C, T, M], R], C], items: Sequence[T],
              done: Callable[[int, R], None] | None = None) -> list[R]:
        """[second(context2, item, first(context1, item))]: where the pool is `apart`, the first stage of each item a
        task asking for `render_gpus` GPUs and the second a CPU task that Ray starts once the first's result is
        ready (the next items' first stages run meanwhile); else both in one task, as `map`. On the first error
        every task of the chain still queued or running is stopped, then the error is raised."""
        if not self.apart:
            return self.map(chained, (first, second), items, done)
        (run_first, context_first), (run_second, context_second) = first, second
        shared_first, shared_second = self._ray.put(context_first), self._ray.put(context_second)

        def submit(item: T) -> tuple[Any, Any]:
            rendering = self._render.remote(run_first, shared_first, item)
            return self._task.remote(run_second, shared_second, item, rendering), rendering

        return self._run_all(items, submit, done)

    def _run_all(self, items: Sequence[T], submit: Callable[[T], tuple[Any, ...]],
                 done: Callable[[int, Any], None] | None) -> list[Any]:
        """Each item's tasks as `submit(item)` makes them: the task whose result is the item's, then the earlier
        tasks it depends on, held only until it is done (Ray frees a result once no reference to it is left). At
        most `workers` (if given) at once; on the first error every task still queued or running is stopped."""
        limit = self._limit or len(items)
        pending: dict[Any, int] = {}
        held: dict[Any, tuple[Any, ...]] = {}
        results: dict[int, Any] = {}
        try:
            for i, item in enumerate(items):
                while len(pending) >= limit:
                    self._collect(pending, held, results, len(items), done)
                last, *before = submit(item)
                pending[last], held[last] = i, tuple(before)
            while pending:
                self._collect(pending, held, results, len(items), done)
        except BaseException:
            self._stop([*pending, *(ref for refs in held.values() for ref in refs)])
            raise
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        """Stop the Ray this pool started (its local cluster, or its connection to a remote one)."""
        if self._owner and self._ray.is_initialized():
            self._ray.shutdown()
        self._owner = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _collect(self, pending: dict[Any, int], held: dict[Any, tuple[Any, ...]], results: dict[int, Any],
                 count: int, done: Callable[[int, Any], None] | None) -> None:
        """Wait for one of `pending` to finish, let go of what it held, and file its result (or raise its error)."""
        [ready], _ = self._ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready)
        held.pop(ready, None)
        results[i] = _result(self._ray, ready, f"item {i + 1} of {count}", self.max_retries + 1)
        if done is not None:
            done(i, results[i])

    def _stop(self, pending: list[Any]) -> None:
        """Cancel the tasks still queued or running, and wait until none runs on. A running task's worker process
        is killed, not interrupted: a KeyboardInterrupt could land inside an import (a fresh worker's first task
        imports torch), and Ray would hand the half-imported process the next task, of this pool or another. What
        a killed task was writing is an `atomic_path` temporary, which the next write into its folder sweeps
        away (files.sweep_stale), as after any crash; the chunks' folders are the driver's to remove."""
        if not pending:
            return
        for ref in pending:
            with contextlib.suppress(Exception):  # one may have finished meanwhile: nothing to cancel
                self._ray.cancel(ref, force=True)
        self._ray.wait(list(pending), num_returns=len(pending), fetch_local=False)


def _run(fn: Callable[..., R], context: C, item: T, *more: Any) -> R:
    """One task, in a Ray worker process: `context` (and a chain's first result, `more`) arrive resolved from the
    object store."""
    _limit_threads()
    return fn(context, item, *more)


@functools.cache  # once per worker process, which Ray keeps for the tasks that follow
def _limit_threads() -> None:
    one_thread_worker()


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise OptionError("--cluster ray needs Ray, which is not installed",
                          fix=f"{INSTALL} (on the driver and on every node of the cluster)") from None
    return ray


def _check_options(gpus_per_task: float, cpus_per_task: float, max_retries: int, workers: int | None) -> None:
    if cpus_per_task < 0 or gpus_per_task < 0 or cpus_per_task + gpus_per_task == 0:
        raise OptionError(f"a Ray task must ask for some CPU or GPU, got cpus_per_task={cpus_per_task}, "
                          f"gpus_per_task={gpus_per_task}", fix="ask for at least 1 CPU or a GPU per task")
    if max_retries < 0:
        raise OptionError(f"max_retries must be 0 or more, got {max_retries}", fix="give 0 (no retry) or more")
    if workers is not None and workers < 1:
        raise OptionError(f"workers must be at least 1, got {workers}", fix="give 1 or more, or none for all")


def _connect(ray: ModuleType, address: str | None, local_cpus: int | None, local_gpus: int | None = None) -> bool:
    """Connect this process to Ray; True if it was this call that did (so `close` should disconnect).

    A local Ray is not bound to loopback: on Linux Ray gives its node the machine's own address whatever it is
    asked; what keeps others out is the token Ray makes for it (~/.ray/auth_token, RAY_AUTH_MODE=token).
    """
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": "warning", "log_to_driver": False}
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
        else:  # "local": a Ray of its own, never one that `ray start` left running on this machine
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private toolkit reports nothing home
            ray.init(address="local", num_cpus=local_cpus or cores(), num_gpus=local_gpus, **quiet)
    except ConnectionError as exc:
        raise _unreachable(address, exc) from exc
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds where nothing listens at HOST:PORT (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", or a ray:// client address: Ray's own lookup
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise _unreachable(address, exc) from exc


def _unreachable(address: str, exc: Exception) -> OptionError:
    return OptionError(f"cannot reach the Ray cluster at {address}: {exc}",
                       fix="start it first (`ray start --head` on the head node), or check RAY_ADDRESS "
                           "(\"auto\" on a node of the cluster, else HEAD:6379)")


def _capacity(resources: dict[str, float], cpus_per_task: float, gpus_per_task: float) -> int:
    """How many tasks the cluster's resources run at once (at least 1)."""
    if gpus_per_task and not resources.get("GPU"):
        raise NoDeviceError("the Ray cluster has no GPU, and these tasks ask for one",
                            fix="start a GPU node into it: ray start --address=HEAD:6379 --num-gpus=1")
    fits = [resources.get(name, 0) / per for name, per in (("CPU", cpus_per_task), ("GPU", gpus_per_task)) if per]
    return max(1, math.floor(min(fits)))


def _result(ray: ModuleType, ref: Any, what: str, tries: int) -> Any:
    """The task's result; the error `fn` raised, as itself; a lost worker or a failure of Ray's as a
    FacewrightError."""
    errors = ray.exceptions
    lost = (errors.WorkerCrashedError, errors.NodeDiedError, errors.OutOfMemoryError, errors.LocalRayletDiedError,
            errors.ObjectLostError)
    try:
        return ray.get(ref)
    except errors.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, lost):  # a chain's first stage lost its worker: the second fails with that as its cause
            raise _lost(what, tries, cause) from exc
        raise (cause if isinstance(cause, BaseException) else exc) from exc  # __cause__: the remote traceback
    except errors.UnserializableException as exc:  # fn's error did not survive pickling: its text did
        raise FacewrightError(f"{what} failed: {_last_error(str(exc))}") from exc
    except lost as exc:
        raise _lost(what, tries, exc) from exc
    except errors.RayError as exc:
        raise FacewrightError(f"{what}: Ray could not run it ({_first_line(exc)})",
                              fix=f"see `ray status` and the logs ({LOGS} on each node)") from exc


def _lost(what: str, tries: int, exc: BaseException) -> WorkerLostError:
    return WorkerLostError(f"{what}: its Ray worker was lost on each of its {tries} tries ({_first_line(exc)})",
                           fix=f"see the worker logs ({LOGS} on the node that ran it); a worker killed for "
                               "memory: run fewer at once (--workers N)")


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _last_error(traceback: str) -> str:
    """'module.Error: message' and the indented lines after it, the end of a formatted traceback."""
    lines = traceback.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line[:1].strip() and not line.startswith("Traceback")]
    return "\n".join(lines[starts[-1]:]) if starts else traceback
