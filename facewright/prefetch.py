"""Running a producer one step ahead in a thread, so that two pipeline stages use two cores.

Decoding and the landmark model spend their time in C++ with the GIL released; running them in a
thread while the main thread aligns, scores and writes the previous frames overlaps the two.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield `items` in order while a background thread computes up to `depth` of them ahead.

    An exception in the producer is raised here, in the consumer; closing the generator (break, error,
    Ctrl-C) stops the producer after the item it is working on.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                _put(buffer, item, stop)
            _put(buffer, _DONE, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            _put(buffer, _Failure(exc), stop)

    worker = threading.Thread(target=produce, name="facewright-prefetch", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


def _put(buffer: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
