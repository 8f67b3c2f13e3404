"""RayPool on a Ray started by the tests on 127.0.0.1 with 2 CPUs and 1 GPU (declared: Ray schedules by what it is
told a node has, so GPU tasks run here without one), and make_pool's choices; last, a long video swapped on it.

The tasks are this module's functions: Ray's worker processes import this module to run them (so it imports
nothing heavy at its top: the swap test imports the API in its body). Tests that need Ray skip where the extra is
not installed (`pip install 'facewright[ray]'`; `make test` installs it). One Ray serves the whole module: each
start costs seconds of both cores.
"""
from __future__ import annotations

import functools
import itertools
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facewright.cluster import make_pool
from facewright.cluster.ray import RayPool, _capacity, _check_reachable
from facewright.errors import FacewrightError, NoDeviceError, OptionError, WorkerLostError
from facewright.files import atomic_path
from facewright.locks import pid_alive
from facewright.workers import InlinePool


@pytest.fixture(scope="module")
def pool() -> Iterator[RayPool]:
    pytest.importorskip("ray")
    with RayPool(local_cpus=2, local_gpus=1) as started:
        yield started
    import ray

    assert not ray.is_initialized()  # close() stopped the Ray it started


def square(offset: int, item: int) -> int:
    return offset + item * item


def wait_for_done(folder: str, item: int) -> int:
    """Item 0 waits until the driver's `done` has seen item 1: so done comes as each task ends, not at the end."""
    deadline = time.monotonic() + 30
    while item == 0 and not (Path(folder) / "done-1").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return item * item


REFUSE_BEATS = 600


def refuse_one(folder: str, item: int) -> int:
    """Item 0 beats for 30 s, item 1 fails once item 0 has begun (a loaded machine may start its worker late),
    the others (queued behind them) leave a file when they run."""
    if item == 0:
        (Path(folder) / "pid-0").write_text(str(os.getpid()))
        for _ in range(REFUSE_BEATS):
            with (Path(folder) / "beats-0").open("a") as f:
                f.write(".")
            time.sleep(0.05)
    elif item == 1:
        deadline = time.monotonic() + 20
        while not (Path(folder) / "beats-0").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise OptionError("this value is refused", path=Path(folder) / "options.json", fix="give another value")
    else:
        time.sleep(0.5)
        (Path(folder) / f"ran-{item}").touch()
    return item


def die_once(folder: str, item: int) -> int:
    """Killed on its first try (the marker is not there yet); counts its tries in the marker."""
    marker = Path(folder) / f"tries-{item}"
    first = not marker.exists()
    with marker.open("a") as f:
        f.write("try\n")
    if first:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * 10


def write_then_die_once(folder: str, item: int) -> str:
    """Writes out-ITEM.txt atomically; on the first try the worker is killed with half of it written."""
    marker = Path(folder) / f"tries-{item}"
    first = not marker.exists()
    with marker.open("a") as f:
        f.write("try\n")
    output = Path(folder) / f"out-{item}.txt"
    with atomic_path(output) as tmp:
        with tmp.open("w") as f:
            f.write("first half\n")
            f.flush()
            if first:
                os.kill(os.getpid(), signal.SIGKILL)
            f.write("second half\n")
    return output.name


def always_die(folder: str, item: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return item


def thread_limits(_: None, item: int) -> tuple[str, int]:
    import torch

    return os.environ.get("OMP_NUM_THREADS", ""), torch.get_num_threads()


def gpus_first(_: None, item: int) -> tuple[int, list]:
    import ray

    return item, [str(g) for g in ray.get_gpu_ids()]


def gpus_second(_: None, item: int, first: tuple[int, list]) -> tuple[int, list, list]:
    import ray

    assert first[0] == item
    return item, first[1], [str(g) for g in ray.get_gpu_ids()]


def refuse_first(folder: str, item: int) -> int:
    if item == 1:
        raise OptionError("this frame is refused", path=Path(folder) / "clip.mp4", fix="give another clip")
    return item


def square_of_first(offset: int, item: int, first: int) -> int:
    return offset + first * first


def test_a_chain_runs_its_first_stage_in_gpu_tasks_and_its_second_in_cpu_tasks(pool, tmp_path):
    finished = []
    assert pool.apart and pool.render_gpus == 1
    results = pool.chain((gpus_first, None), (gpus_second, None), [0, 1, 2], done=lambda i, r: finished.append(i))
    assert results == [(0, ["0"], []), (1, ["0"], []), (2, ["0"], [])]  # the GPU for the first stage only
    assert sorted(finished) == [0, 1, 2]
    with pytest.raises(OptionError, match="this frame is refused") as caught:  # a first stage's error, as itself
        pool.chain((refuse_first, str(tmp_path)), (square_of_first, 0), [0, 1, 2])
    assert caught.value.fix == "give another clip"
    lost = "item 1 of 1: its Ray worker was lost"
    with RayPool(max_retries=0) as fragile, pytest.raises(WorkerLostError, match=lost):
        fragile.chain((always_die, str(tmp_path)), (square_of_first, 0), [0])  # the first stage's worker died
    with RayPool(render_gpus=0) as together:  # the same cluster, the stages in one CPU task
        assert not together.apart
        assert together.chain((gpus_first, None), (gpus_second, None), [4]) == [(4, [], [])]


def test_results_come_in_item_order_and_done_as_each_finishes(pool, tmp_path):
    finished = []

    def done(i: int, result: int) -> None:
        finished.append((i, result))
        (tmp_path / f"done-{i}").touch()

    assert pool.workers == 2
    assert pool.map(wait_for_done, str(tmp_path), [0, 1, 2, 3], done=done) == [0, 1, 4, 9]
    assert sorted(finished) == [(0, 0), (1, 1), (2, 4), (3, 9)]
    assert finished.index((1, 1)) < finished.index((0, 0))
    assert pool.map(square, 100, [2, 3]) == [104, 109]
    assert pool.map(square, 0, []) == []


def test_a_typed_error_in_a_task_is_raised_as_itself_once_the_rest_stopped(pool, tmp_path):
    with pytest.raises(OptionError) as caught:
        pool.map(refuse_one, str(tmp_path), range(12))
    assert caught.value.path == tmp_path / "options.json"
    assert caught.value.fix == "give another value" and caught.value.message == "this value is refused"
    beats = (tmp_path / "beats-0").read_text()
    time.sleep(0.5)
    assert (tmp_path / "beats-0").read_text() == beats  # item 0 no longer runs
    assert 0 < len(beats) < REFUSE_BEATS  # it was stopped, not waited for
    assert _gone(int((tmp_path / "pid-0").read_text()))  # killed: no half-done import is handed the next task
    assert len(list(tmp_path.glob("ran-*"))) < 10  # the queued ones were cancelled


def _gone(pid: int, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_worker_killed_mid_task_is_retried(pool, tmp_path):
    assert pool.map(die_once, str(tmp_path), [1, 2]) == [10, 20]
    assert (tmp_path / "tries-1").read_text() == "try\n" * 2  # killed once, then ran to the end
    assert (tmp_path / "tries-2").read_text() == "try\n" * 2


def test_a_write_killed_midway_leaves_only_the_complete_file(pool, tmp_path):
    assert pool.map(write_then_die_once, str(tmp_path), [7]) == ["out-7.txt"]
    assert (tmp_path / "out-7.txt").read_text() == "first half\nsecond half\n"
    assert (tmp_path / "tries-7").read_text() == "try\n" * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-7.txt", "tries-7"]  # the killed try's .partial: gone


def test_a_worker_lost_on_every_try_is_a_facewright_error(pool, tmp_path):
    shared = RayPool(max_retries=1)  # joins the pool's Ray, and leaves it running on close
    with shared, pytest.raises(FacewrightError, match=r"item 1 of 1: its Ray worker was lost on each of its 2 tries"):
        shared.map(always_die, str(tmp_path), [0])
    assert pool.map(square, 1, [3]) == [10]  # the first pool's Ray lives on


def test_each_task_runs_on_one_thread(pool):
    assert pool.map(thread_limits, None, [0, 1]) == [("1", 1), ("1", 1)]


def test_make_pool_ray_takes_the_cluster_or_a_cap(pool, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for workers, expected in ((None, 2), (0, 2), (1, 1)):
        with make_pool(workers, "ray") as ray_pool:
            assert isinstance(ray_pool, RayPool) and ray_pool.workers == expected
            assert ray_pool.map(square, 0, [2, 3]) == [4, 9]
            assert ray_pool.apart  # the cluster has a GPU: a swap's model goes there
    with make_pool(None, "ray", device="cpu") as ray_pool:
        assert not ray_pool.apart


def test_make_pool_local_ignores_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # nothing listens there: a RayPool would fail
    with make_pool(1, "local") as local:
        assert isinstance(local, InlinePool)


def test_make_pool_refuses_an_unknown_cluster():
    with pytest.raises(OptionError, match="unknown cluster 'slurm'") as caught:
        make_pool(2, "slurm")
    assert caught.value.fix == "use --cluster local or ray"


def test_without_ray_the_pool_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(OptionError, match="needs Ray") as caught:
        RayPool()
    assert "pip install 'facewright[ray]'" in caught.value.fix


@pytest.mark.parametrize(("cpus", "gpus", "expected"), [(1, 0, 16), (4, 0, 4), (3, 0, 5), (1, 1, 2), (8, 0.5, 2),
                                                        (32, 0, 1)])
def test_workers_are_what_the_cluster_holds_at_once(cpus, gpus, expected):
    assert _capacity({"CPU": 16.0, "GPU": 2.0}, cpus, gpus) == expected


def test_tasks_that_ask_for_a_gpu_on_a_cluster_without_one_are_refused():
    with pytest.raises(NoDeviceError, match="no GPU") as caught:
        _capacity({"CPU": 16.0}, 1, 1)
    assert "--num-gpus=1" in caught.value.fix


def test_a_cluster_address_where_nothing_listens_fails_at_once():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OptionError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}") as caught:
        _check_reachable(f"127.0.0.1:{port}")
    assert "ray start --head" in caught.value.fix
    _check_reachable("auto")  # left to Ray's own lookup


KILL_AFTER = 0.5  # seconds into its first try the worker compositing chunk 0 dies


def first_try(folder: str, name: str) -> bool:
    marker = Path(folder) / f"{name}-tries"
    first = not marker.exists()
    with marker.open("a") as f:
        f.write("try\n")
    return first


def kill_after_rendering(folder: str, fn, context, item):
    """`fn(context, item)` (the model's work), but on its first try for chunk 1 the worker dies once it is done,
    before its result is handed on."""
    rendered = fn(context, item)
    if item.chunk.index == 1 and first_try(folder, "faces-1"):
        os.kill(os.getpid(), signal.SIGKILL)
    return rendered


def kill_midway(folder: str, fn, context, item, *rendered):
    """`fn(context, item, ...)` (the compositing and encoding), but on its first try for chunk 0 the worker dies
    KILL_AFTER seconds in, while it writes the chunk's segment."""
    if item.chunk.index == 0 and first_try(folder, "composite-0"):
        threading.Timer(KILL_AFTER, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return fn(context, item, *rendered)


class KillingPool:
    """A pool that keeps a chain's stages apart, whose tasks for chunk 1's faces and chunk 0's compositing lose
    their worker once."""

    def __init__(self, pool, folder: Path):
        self.pool, self.folder, self.workers, self.apart = pool, folder, pool.workers, pool.apart

    def map(self, fn, context, items, done=None):  # the first pass: finding faces
        return self.pool.map(fn, context, items, done)

    def chain(self, first, second, items, done=None):
        (render, one), (composite, two) = first, second
        folder = str(self.folder)
        return self.pool.chain((functools.partial(kill_after_rendering, folder, render), one),
                               (functools.partial(kill_midway, folder, composite), two), items, done)


@pytest.mark.slow
def test_a_video_swapped_on_ray_with_a_worker_killed_midway_equals_the_single_process_swap(
        pool, model_ws, long_clip, tmp_path, monkeypatch):
    """A long video swapped in chunks on the Ray (2 CPUs and 1 GPU declared) equals the single-process swap and
    verifies: the model's work runs in GPU tasks, the compositing in CPU tasks, though the worker rendering one
    chunk's faces and the one compositing another chunk are each killed once: Ray runs those tasks again, and
    nothing half-written is left beside the output."""
    from facewright import api
    from facewright.config import MarkOptions, SwapOptions, VideoOptions
    from facewright.swap import chunks as swap_chunks
    from facewright.swap.run import swap as run_swap
    from facewright.workspace import Workspace
    from tests.conftest import SWAP_MODEL as MODEL
    from tests.swap.test_chunks import assert_same_swap

    monkeypatch.setattr(swap_chunks, "MIN_CHUNK_SECONDS", 1.0)  # the clip is 4.8 s
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir(), markers.mkdir()
    results = {}
    with Workspace.open(model_ws) as ws:
        for name, given in (("single", None), ("ray", KillingPool(pool, markers))):
            [results[name]] = run_swap(ws, long_clip, out / f"{name}.mp4", MODEL,
                                       SwapOptions(workers=1 if given is None else 2), MarkOptions(), VideoOptions(),
                                       signer=api.keys_show(), trust=api.consent_trust(),
                                       payloads=itertools.count(21), pool=given)
            if given is None:  # an id is unique per catalog: the second output takes it over
                ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{21:016x}",))
    assert (markers / "faces-1-tries").read_text() == "try\ntry\n"  # killed once, run again
    assert (markers / "composite-0-tries").read_text() == "try\ntry\n"
    assert "swapped in 2 chunks on 2 workers" in results["ray"].notes
    assert "rendered in GPU tasks, composited in CPU tasks" in results["ray"].notes
    assert_same_swap(results["single"], results["ray"], long_clip, model_ws)
    assert sorted(p.name for p in out.iterdir()) == ["ray.mp4", "single.mp4"]  # no partial segment or staging
