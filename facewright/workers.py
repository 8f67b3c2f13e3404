"""Independent units of work (the chunks of a video) on several processes: the pool a stage is handed.

A stage that can split its work says so by taking a `Pool` and calling `pool.map(fn, context, items)`:
`fn(context, item)` runs once per item, in another process where the pool has them, and the results come
back in the order of `items`. `context` is what every item needs (a model, options) and `fn` a module-level
function, so both pickle. Which pool runs them is the caller's choice: `InlinePool` (this process),
`LocalPool` (a process per core, the default of `--workers`, the driver counting as one where it `helps`) or
the Ray pool of `facewright.cluster`.

Workers share nothing with the driver: each loads what `context` names, writes its own files, and returns
plain data; only the driver touches the catalog and the signing key.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from facewright.errors import OptionError, WorkerLostError

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")

# Each worker is one core's worth: libraries that start a thread per core (OpenMP in torch, OpenCV,
# MediaPipe's XNNPACK) would otherwise run N x N threads on N cores.
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
# What a worker imports as it starts, before its first task (`LocalPool(warm=...)`): a task that needs no torch
# (extraction) is spared its import, about 2 s of a core.
WARM_ALL = ("numpy", "cv2", "torch", "av", "mediapipe")


class Pool(Protocol):
    workers: int  # how many items run at once
    apart: bool  # whether `chain` runs its two stages as tasks of their own, on the resources each asks for

    def chain(self, first: tuple[Callable[[C, T], M], C], second: tuple[Callable[[C, T, M], R], C], items: Sequence[T],
              done: Callable[[int, R], None] | None = None) -> list[R]:
        """`map` of two stages, each a (function, context): [second(context2, item, first(context1, item))]. Where
        the pool keeps them `apart` (Ray with GPUs: the model's work on a GPU, the rest on CPUs) each stage is a
        task and what the first returns travels to the second; else both run in one task."""
        ...

    def map(self, fn: Callable[[C, T], R], context: C, items: Sequence[T],
            done: Callable[[int, R], None] | None = None) -> list[R]:
        """[fn(context, item) for item in items], some at once; `done(i, result)` as each finishes. The first
        error raised by an item is raised here, after the items still running have stopped."""
        ...

    def close(self) -> None: ...


class _OneTaskChain:
    """`chain` for a pool that runs both stages of an item in one task (its `map`'s)."""

    apart = False

    def chain(self, first: tuple[Callable[[C, T], M], C], second: tuple[Callable[[C, T, M], R], C], items: Sequence[T],
              done: Callable[[int, R], None] | None = None) -> list[R]:
        return self.map(chained, (first, second), items, done)  # type: ignore[attr-defined]


class InlinePool(_OneTaskChain):
    """The items one after another in this process (`--workers 1`)."""

    workers = 1

    def map(self, fn: Callable[[C, T], R], context: C, items: Sequence[T],
            done: Callable[[int, R], None] | None = None) -> list[R]:
        results = []
        for i, item in enumerate(items):
            results.append(fn(context, item))
            if done is not None:
                done(i, results[-1])
        return results

    def close(self) -> None:
        pass

    def __enter__(self) -> InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalPool(_OneTaskChain):
    """A process per worker on this machine, started with `spawn` (a fork would copy the driver's threads
    and CUDA state). The processes start at once and import the libraries named in `warm` while the driver
    works on; they stay for every `map` until `close`.

    `helps`: the driver is one of the `workers`: it starts `workers - 1` processes and runs items itself while
    it waits, from the end of the list while the processes take them from the front. It has everything
    imported and loaded already, so it starts on the first item at once, while the processes are still
    starting (on 2 cores, a second process's start-up and the chunks' uneven lengths left a quarter of the
    machine idle). Only for items that may run in the driver: one that kills its own process must not."""

    def __init__(self, workers: int, warm: tuple[str, ...] = WARM_ALL, *, helps: bool = False):
        if workers < 1 or (helps and workers < 2):
            raise ValueError(f"workers must be at least {2 if helps else 1}, got {workers}")
        self.workers, self.helps = workers, helps
        self._executor = cf.ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=one_thread_worker)
        for _ in range(self.processes):  # start them now: importing torch and the face models takes seconds
            self._executor.submit(_warm, warm)

    @property
    def processes(self) -> int:
        """How many processes it started: one fewer than `workers` where the driver helps."""
        return self.workers - 1 if self.helps else self.workers

    def map(self, fn: Callable[[C, T], R], context: C, items: Sequence[T],
            done: Callable[[int, R], None] | None = None) -> list[R]:
        if self.helps:
            return _HelpedMap(self._executor, self.processes, fn, context, items, done).run()
        futures = {self._executor.submit(fn, context, item): i for i, item in enumerate(items)}
        results: dict[int, R] = {}
        try:
            for future in cf.as_completed(futures):
                i = futures[future]
                results[i] = _result(future, i, len(items))
                if done is not None:
                    done(i, results[i])
        except BaseException:
            for future in futures:
                future.cancel()
            cf.wait(futures)  # nothing of this map runs on once it has failed
            raise
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LOST_FIX = "run fewer at once (--workers N), or --workers 1; nothing half-written was kept"


def _result(future: cf.Future, i: int, count: int):
    """A worker's result, or its error raised here; a process that died as WorkerLostError."""
    try:
        return future.result()
    except cf.process.BrokenProcessPool as exc:
        raise WorkerLostError(f"a worker process died while running item {i + 1} of {count} (killed, or out of "
                              "memory)", fix=LOST_FIX) from exc


class _HelpedMap:
    """One `map` of a pool whose driver helps (`LocalPool(helps=True)`): the processes are handed the items
    from the front, one each and the next as one finishes; the driver runs the items from the back between
    collecting theirs. Every `done` call and every error surfaces in the driver's thread.

    A thread of the driver hands the next item to a process that finished one: the pool's own thread, which
    reports the finished one, must not submit (on Python 3.12+ it holds the pool's lock while it reports a
    dead process)."""

    def __init__(self, executor: cf.ProcessPoolExecutor, processes: int, fn: Callable, context: object,
                 items: Sequence, done: Callable | None):
        self.executor, self.processes, self.fn, self.context, self.items, self.done = \
            executor, processes, fn, context, items, done
        self.front, self.back = 0, len(items)  # items front .. back - 1 are not handed out yet
        self.lock = threading.Lock()
        self.futures: dict[cf.Future, int] = {}
        self.finished: queue.SimpleQueue[cf.Future | None] = queue.SimpleQueue()  # for the driver to collect
        self.error: BaseException | None = None
        self.freed: queue.SimpleQueue[cf.Future | None] = queue.SimpleQueue()  # for the hand-out thread
        self.stopped = False
        self.results: dict[int, object] = {}

    def run(self) -> list:
        dispatcher = threading.Thread(target=self._dispatch, name="facewright-hand-out", daemon=True)
        try:
            for _ in range(self.processes):
                self._hand_out()
            dispatcher.start()
            while (i := self._take_back()) is not None:
                with _one_thread():
                    self._finish(i, self.fn(self.context, self.items[i]))
                self._collect(block=False)
            while len(self.results) < len(self.items):
                self._collect(block=True)
        except BaseException:
            with self.lock:
                self.stopped = True  # nothing more is handed out
            self._stop(dispatcher)
            futures = list(self.futures)
            for future in futures:
                future.cancel()
            if self._broken():  # on 3.11 a rare race can leave the pool's thread dead and processes running on
                for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                    process.terminate()
            else:
                cf.wait(futures)  # nothing of this map runs on once it has failed
            raise
        self._stop(dispatcher)
        return [self.results[i] for i in range(len(self.items))]

    def _stop(self, dispatcher: threading.Thread) -> None:
        if dispatcher.is_alive():
            self.freed.put(None)
            dispatcher.join()

    def _dispatch(self) -> None:
        while self.freed.get() is not None:
            self._hand_out()

    def _hand_out(self) -> None:
        """The next item from the front to a process."""
        with self.lock:
            if self.stopped or self.front >= self.back:
                return
            i, self.front = self.front, self.front + 1
            try:
                future = self.executor.submit(self.fn, self.context, self.items[i])
            except BaseException as exc:  # a process died, the pool is closed, or spawning one failed
                self.stopped, self.error = True, exc
                self.finished.put(None)  # wakes the driver to raise it
                return
            self.futures[future] = i
            future.add_done_callback(self._done)

    def _done(self, future: cf.Future) -> None:  # in the pool's thread: queues only
        self.finished.put(future)
        self.freed.put(future)

    def _take_back(self) -> int | None:
        with self.lock:
            if self.stopped or self.front >= self.back:
                return None
            self.back -= 1
            return self.back

    def _collect(self, block: bool) -> None:
        """Take the processes' finished items: all that are in (`block`: wait for at least one)."""
        while True:
            try:
                future = self.finished.get(timeout=1.0) if block else self.finished.get(block=False)
            except queue.Empty:
                if not block:
                    return
                if self._broken():  # its processes died and (Python 3.11, a rare race) nothing said so
                    raise WorkerLostError("the worker processes died (killed, or out of memory)",
                                          fix=LOST_FIX) from None
                continue
            if future is None:
                raise WorkerLostError(f"the worker processes stopped: {self.error}", fix=LOST_FIX) from self.error
            with self.lock:
                i = self.futures[future]
            self._finish(i, _result(future, i, len(self.items)))
            block = False

    def _broken(self) -> bool:
        return bool(getattr(self.executor, "_broken", False))

    def _finish(self, i: int, result: object) -> None:
        self.results[i] = result
        if self.done is not None:
            self.done(i, result)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The driver running an item is one worker among the others: one thread per library meanwhile."""
    cv2, torch = sys.modules.get("cv2"), sys.modules.get("torch")  # one not loaded yet starts no threads here
    before = (cv2.getNumThreads() if cv2 else None, torch.get_num_threads() if torch else None)
    if cv2:
        cv2.setNumThreads(1)
    if torch:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if cv2:
            cv2.setNumThreads(before[0])
        if torch:
            torch.set_num_threads(before[1])


def cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    """What `--workers 0` (the default) means: $FACEWRIGHT_WORKERS where it is set (a machine shared with other
    work caps every command at once), else one per core."""
    value = os.environ.get("FACEWRIGHT_WORKERS", "").strip()
    if not value:
        return cores()
    if not value.isdigit() or int(value) < 1:
        raise OptionError(f"FACEWRIGHT_WORKERS={value!r} is not a count of processes",
                          fix="set it to a whole number of 1 or more (1: no worker processes), "
                              "or unset it for one per core")
    return int(value)


def local_pool(workers: int | None, warm: tuple[str, ...] = WARM_ALL, *, helps: bool = False
               ) -> InlinePool | LocalPool:
    """The pool of `--workers N`: None or 0 means the default (`default_workers`); 1 means this process alone.
    `helps`: the driver counts as one of the N (LocalPool)."""
    count = workers or default_workers()
    return InlinePool() if count <= 1 else LocalPool(count, warm, helps=helps)


class LazyPool:
    """The pool given, or a local one of `workers` processes made on first `get()` (a short video or a photo
    never starts one), which import `warm` as they start; closed at the end of the `with` block, whichever
    way it ends."""

    def __init__(self, given: Pool | None, workers: int, warm: tuple[str, ...] = WARM_ALL, *, helps: bool = False):
        self.given, self.workers, self.warm, self.helps = given, workers, warm, helps
        self._made: Pool | None = None

    @property
    def size(self) -> int:
        """How many workers the pool has (or will have)."""
        return self.given.workers if self.given is not None else (self.workers or default_workers())

    def get(self) -> Pool:
        if self.given is not None:
            return self.given
        if self._made is None:
            self._made = local_pool(self.workers, self.warm, helps=self.helps)
        return self._made

    def __enter__(self) -> LazyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._made is not None:
            self._made.close()


def chained(stages: tuple[tuple[Callable, object], tuple[Callable, object]], item: object) -> object:
    """Both stages of a `chain` in one task (a pool that does not keep them apart)."""
    (first, one), (second, two) = stages
    return second(two, item, first(one, item))


def one_thread_worker() -> None:
    """Limit this (worker) process to one thread per library: run first in each worker. Torch, when it is
    imported later, takes its thread count from OMP_NUM_THREADS; where it is loaded already it is told."""
    os.environ.update(_ONE_THREAD)
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:  # a lean GPU node may lack it; nothing to limit then
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _warm(names: tuple[str, ...]) -> None:
    """Import the heavy libraries the pool's tasks need, once per worker, before the first task."""
    for name in names:
        try:
            __import__(name)
        except ImportError:
            pass
