"""Running a producer one step ahead in a thread (and a consumer behind in one), so pipeline stages use more cores.

Decoding and the landmark model spend their time in C++ with the GIL released; running them in threads
ahead of the main thread, which aligns, scores and writes the previous frames, overlaps the three.
"""
from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield `items` in order while a background thread computes up to `depth` of them ahead.

    An exception in the producer is raised here, in the consumer; closing the generator (break, error,
    Ctrl-C) stops the producer after the item it is working on, and closes `items` where it is a generator,
    so that a prefetch feeding this one (a stage ahead of a stage) has stopped too when this one is closed:
    the reader or model the stages use can be closed next.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    source = iter(items)

    def produce() -> None:
        try:
            while not stop.is_set():
                item = next(source, _DONE)
                _put(buffer, item, stop)
                if item is _DONE:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            _put(buffer, _Failure(exc), stop)
        finally:
            close_source(source)  # here, in the thread that ran it: a generator cannot be closed while it runs

    worker = threading.Thread(target=produce, name="facewright-prefetch", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, _Failure):
                error, item = item.error, None
                try:
                    raise error
                finally:
                    del error  # no cycle (error, its traceback, this frame) keeps the stages alive after it
            yield item
    finally:
        stop.set()
        if worker is not threading.current_thread():  # collected in the producer itself: nothing to wait for
            _join(worker)


def close_source(items: object) -> None:
    """Close `items` where it is a generator (a stage before this one, a reader's frames): its threads stop and
    its reader closes now, even when an error's traceback keeps the stage that read it alive."""
    if inspect.isgenerator(items):
        items.close()


def _join(worker: threading.Thread) -> None:
    """Wait until the producer has stopped (it does after the item under way): only then may the caller close
    what the producer uses (PyAV crashes on a container closed under a decode). A Ctrl-C meanwhile gives it
    STOP_GRACE seconds more, then is raised."""
    try:
        worker.join()
    except KeyboardInterrupt:
        worker.join(STOP_GRACE)
        raise


STOP_GRACE = 5.0  # seconds a producer is given to stop after a Ctrl-C during the wait for it
DECODE_AHEAD = 2  # video frames decoded ahead of the stage that reads them (two 4K frames: 50 MB)


def decoded_ahead(frames: Iterable[T]) -> Iterator[T]:
    """A video's `frames` decoded in a thread of their own, DECODE_AHEAD ahead: put in front of a stage that
    runs in a `prefetch` thread itself (the landmark model), decoding, that stage and the caller's work run at
    once, where decoding and the model in one thread were the whole of one process's time."""
    return prefetch(frames, depth=DECODE_AHEAD)


def _put(buffer: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class Behind:
    """Runs `consume(item)` on each item `put` here, in order, in a background thread up to `depth` items behind.

    The other half of `prefetch`: an encoder (its C++ releases the GIL) writes the frames of the previous
    batch while the main thread renders the next. An exception in `consume` is raised by the next `put` or by
    leaving the `with` block; leaving it waits until every item is consumed (or, on an error, stops after the
    item under way), so what `consume` writes to is complete when the block ends.
    """

    def __init__(self, consume: Callable[[T], object], depth: int = 2):
        self._consume = consume
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="facewright-behind", daemon=True)

    def __enter__(self) -> Behind:
        self._worker.start()
        return self

    def put(self, item: T) -> None:
        self._raise()
        _put(self._buffer, item, self._stop)
        self._raise()

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            _put(self._buffer, _DONE, self._stop)
        else:
            self._stop.set()
        self._worker.join()
        if kind is None:
            self._raise()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._buffer.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            try:
                self._consume(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer, which raises it
                self._failure = exc
                self._stop.set()
                return

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure
