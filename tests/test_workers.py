"""The process pools stages are handed: results in item order, `done` per item, a worker's typed error
raised in the driver as itself, a dead worker as WorkerLostError, errors that survive pickling."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

import pytest

from facewright.errors import InputError, OptionError, TruncatedMediaError, WorkerLostError
from facewright.workers import InlinePool, LazyPool, LocalPool, cores, default_workers, local_pool


def square(offset: int, item: int) -> int:
    return offset + item * item


def fail_on(bad: int, item: int) -> int:
    if item == bad:
        raise TruncatedMediaError("cut short", path=f"clip{item}.mp4", fix="re-copy it", decoded_frames=3,
                                  expected_frames=9)
    return item


def die(_: object, item: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return item


def plus(offset: int, item: int, first: int) -> tuple[int, int]:
    return item, offset + first


def where(pause: float, item: int) -> tuple[int, int, int]:
    """(item, the process that ran it, OpenCV's thread count there), after `pause` seconds."""
    import time

    import cv2

    time.sleep(pause)
    return item, os.getpid(), cv2.getNumThreads()


def die_on_first(_: object, item: int) -> int:
    if item == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_typed_errors_survive_pickling_with_their_fields():
    error = pickle.loads(pickle.dumps(TruncatedMediaError("cut short", path="a.mp4", fix="re-copy", decoded_frames=3,
                                                          expected_frames=9)))
    assert type(error) is TruncatedMediaError and isinstance(error, InputError)
    assert (error.message, str(error.path), error.fix, error.decoded_frames, error.expected_frames) == \
        ("cut short", "a.mp4", "re-copy", 3, 9)
    assert str(error) == "a.mp4: cut short\n  fix: re-copy" and error.args == (str(error),)


def test_the_inline_pool_runs_in_order_and_reports_each_item():
    seen = []
    assert InlinePool().map(square, 1, [1, 2, 3], done=lambda i, r: seen.append((i, r))) == [2, 5, 10]
    assert seen == [(0, 2), (1, 5), (2, 10)]
    assert isinstance(local_pool(1), InlinePool)


def test_a_chain_on_a_pool_that_keeps_no_stages_apart_runs_both_in_one_task():
    """second(context2, item, first(context1, item)), in item order, `done` per item."""
    seen = []
    pool = InlinePool()
    assert not pool.apart
    assert pool.chain((square, 1), (plus, 100), [2, 3], done=lambda i, r: seen.append(i)) == [(2, 105), (3, 110)]
    assert seen == [0, 1]
    with pytest.raises(TruncatedMediaError):
        pool.chain((fail_on, 3), (plus, 0), [1, 3])


@pytest.mark.slow
def test_a_local_pool_returns_in_order_raises_a_workers_typed_error_and_reports_a_dead_worker():
    with LocalPool(2) as pool:
        seen = []
        assert pool.map(square, 0, list(range(6)), done=lambda i, r: seen.append(i)) == [0, 1, 4, 9, 16, 25]
        assert sorted(seen) == list(range(6))
        with pytest.raises(TruncatedMediaError) as caught:
            pool.map(fail_on, 2, [1, 2, 3])
        assert caught.value.decoded_frames == 3 and caught.value.path.name == "clip2.mp4"
        assert not pool.apart and pool.chain((square, 0), (plus, 1), [4, 5]) == [(4, 17), (5, 26)]
    with LocalPool(2) as pool, pytest.raises(WorkerLostError, match="a worker process died"):
        pool.map(die, None, [1])


@pytest.mark.slow
def test_a_pool_whose_driver_helps_runs_the_last_items_itself_and_the_first_in_its_processes():
    """helps=True: N workers are the driver and N - 1 processes, the processes taking items from the front,
    the driver from the back, one thread per library while it does; results, `done` and errors as without."""
    import cv2

    threads = cv2.getNumThreads()
    with pytest.raises(ValueError):
        LocalPool(1, helps=True)
    with LocalPool(2, ("cv2",), helps=True) as pool:
        assert pool.workers == 2
        seen = []
        results = pool.map(where, 0.2, list(range(6)), done=lambda i, r: seen.append(i))
        assert [item for item, _, _ in results] == list(range(6)) and sorted(seen) == list(range(6))
        pids = [pid for _, pid, _ in results]
        assert pids[0] != os.getpid() and pids[-1] == os.getpid()  # item 0 is handed out before the driver starts
        assert {count for _, pid, count in results if pid == os.getpid()} == {1} and cv2.getNumThreads() == threads
        with pytest.raises(TruncatedMediaError) as caught:
            pool.map(fail_on, 3, [1, 2, 3])  # the driver's own item fails
        assert caught.value.path.name == "clip3.mp4"
        with pytest.raises(TruncatedMediaError):
            pool.map(fail_on, 0, [0, 1, 2])  # a process's item fails
        assert pool.map(square, 1, [2, 3]) == [5, 10]  # the pool goes on after an item's error
    with LocalPool(2, ("cv2",), helps=True) as pool, pytest.raises(WorkerLostError, match="a worker process died"):
        pool.map(die_on_first, None, [0, 1, 2, 3])


CONSOLE_SCRIPT = '''
import sys
from facewright.__main__ import main  # what the `facewright` console script imports


def loaded(_context, _item):
    return sorted(name for name in ("torch", "facewright.cli", "facewright.api") if name in sys.modules)


if __name__ == "__main__":
    from facewright.collect.chunks import WARM
    from facewright.workers import LocalPool
    for warm in (WARM, None):
        with LocalPool(1, *([warm] if warm else [])) as pool:
            print(" ".join(pool.map(loaded, None, [0])[0]) or "-")
'''


def test_a_worker_of_the_command_imports_neither_the_command_line_nor_what_its_tasks_do_not_need(tmp_path):
    """A worker started with `spawn` imports its parent's main script first: `facewright`'s is light, and an
    extraction worker (collect.chunks.WARM) is spared torch; the default warm-up loads it."""
    script = tmp_path / "facewright-like"
    script.write_text(CONSOLE_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["-", "torch"]


def test_the_default_count_is_one_per_core_unless_facewright_workers_says_otherwise(monkeypatch):
    monkeypatch.delenv("FACEWRIGHT_WORKERS", raising=False)
    assert default_workers() == cores() and LazyPool(None, 0).size == cores()
    monkeypatch.setenv("FACEWRIGHT_WORKERS", "3")
    assert default_workers() == 3 and LazyPool(None, 0).size == 3 and LazyPool(None, 2).size == 2
    monkeypatch.setenv("FACEWRIGHT_WORKERS", "1")
    assert isinstance(local_pool(0), InlinePool) and isinstance(local_pool(None), InlinePool)
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv("FACEWRIGHT_WORKERS", bad)
        with pytest.raises(OptionError, match="FACEWRIGHT_WORKERS") as caught:
            local_pool(0)
        assert "unset it" in caught.value.fix
