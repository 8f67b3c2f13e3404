import threading
import time

import pytest

from facewright.prefetch import Behind, close_source, decoded_ahead, prefetch


def test_items_come_in_order():
    assert list(prefetch(range(100), depth=3)) == list(range(100))


def test_producer_error_is_raised_in_the_consumer():
    def items():
        yield 1
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1]


def test_closing_early_stops_the_producer():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetch(items(), depth=2):
        if item == 3:
            break
    time.sleep(0.3)
    assert len(produced) < 10  # it stopped a few items ahead, not at the end
    assert not any(t.name == "facewright-prefetch" for t in threading.enumerate())


def test_closing_a_stage_fed_by_another_stops_both_before_close_returns():
    closed = []

    def frames():  # a reader: it must not be read once the pipeline is closed
        try:
            yield from range(1000)
        finally:
            closed.append(threading.current_thread().name)

    def landmarked(items):
        for item in items:
            yield item * 10

    stream = prefetch(landmarked(prefetch(frames(), depth=2)), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 10, 20]
    stream.close()
    assert closed == ["facewright-prefetch"]  # closed in its own thread, and already, not whenever it is collected
    assert not any(t.name == "facewright-prefetch" for t in threading.enumerate())


def test_an_error_in_a_stage_stops_the_stage_before_it_while_the_error_is_still_held():
    closed = []

    def frames():
        try:
            yield from range(1000)
        finally:
            closed.append("reader")

    def landmarked(items):
        try:
            for item in items:
                if item == 3:
                    raise ValueError("the model failed")
                yield item
        finally:
            close_source(items)

    with pytest.raises(ValueError, match="the model failed") as caught:
        for _ in prefetch(landmarked(decoded_ahead(frames()))):
            pass
    assert caught.value.__traceback__ is not None  # the error (and its traceback) still held, no collection run
    assert closed == ["reader"]
    assert not any(t.name == "facewright-prefetch" for t in threading.enumerate())


def test_a_source_that_is_not_a_generator_is_left_open():
    class Lines:  # a file-like iterator: its owner closes it
        def __init__(self):
            self.items, self.closed = iter(range(5)), False

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.items)

        def close(self):
            self.closed = True

    lines = Lines()
    assert list(prefetch(lines)) == [0, 1, 2, 3, 4] and not lines.closed


def test_producer_runs_ahead_of_the_consumer():
    second_started = threading.Event()

    def items():
        yield 0
        second_started.set()  # reached only if the producer goes on while the consumer holds item 0
        yield 1

    stream = prefetch(items())
    assert next(stream) == 0
    assert second_started.wait(5)
    assert list(stream) == [1]


def test_behind_consumes_every_item_in_order_before_the_block_ends():
    seen = []
    with Behind(lambda item: (time.sleep(0.01), seen.append(item))) as behind:
        for i in range(20):
            behind.put(i)
    assert seen == list(range(20))


def test_behind_raises_the_consumers_error_and_stops():
    seen = []

    def consume(item: int) -> None:
        if item == 3:
            raise OSError("disk full")
        seen.append(item)

    with pytest.raises(OSError, match="disk full"), Behind(consume, depth=1) as behind:
        for i in range(100):
            behind.put(i)
    assert seen == [0, 1, 2]


def test_an_error_in_the_block_stops_the_consumer_after_the_item_under_way():
    seen = []
    with pytest.raises(KeyError), Behind(lambda item: (time.sleep(0.05), seen.append(item)), depth=8) as behind:
        for i in range(8):
            behind.put(i)
        raise KeyError("render failed")
    assert len(seen) < 8
