"""A long video swapped in chunks on a Ray cluster started by the test (2 CPUs and 1 GPU declared, this machine)
equals the single-process swap and verifies: the model's work runs in GPU tasks, the compositing in CPU tasks,
though the worker rendering one chunk's faces and the one compositing another chunk are each killed once: Ray
runs those tasks again, and nothing half-written is left beside the output."""
from __future__ import annotations

import functools
import itertools
import os
import signal
import threading
from pathlib import Path

import pytest

from facewright import api
from facewright.config import MarkOptions, SwapOptions, VideoOptions
from facewright.swap import chunks as swap_chunks
from facewright.swap.run import swap as run_swap
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL as MODEL
from tests.swap.test_chunks import assert_same_swap

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
        model_ws, long_clip, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from facewright.cluster.ray import RayPool

    monkeypatch.setattr(swap_chunks, "MIN_CHUNK_SECONDS", 1.0)  # the clip is 4.8 s
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir(), markers.mkdir()
    results = {}
    with Workspace.open(model_ws) as ws, RayPool(local_cpus=2, local_gpus=1) as ray_pool:
        for name, pool in (("single", None), ("ray", KillingPool(ray_pool, markers))):
            [results[name]] = run_swap(ws, long_clip, out / f"{name}.mp4", MODEL,
                                       SwapOptions(workers=1 if pool is None else 2), MarkOptions(), VideoOptions(),
                                       signer=api.keys_show(), trust=api.consent_trust(),
                                       payloads=itertools.count(21), pool=pool)
            if pool is None:  # an id is unique per catalog: the second output takes it over
                ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{21:016x}",))
    assert (markers / "faces-1-tries").read_text() == "try\ntry\n"  # killed once, run again
    assert (markers / "composite-0-tries").read_text() == "try\ntry\n"
    assert "swapped in 2 chunks on 2 workers" in results["ray"].notes
    assert "rendered in GPU tasks, composited in CPU tasks" in results["ray"].notes
    assert_same_swap(results["single"], results["ray"], long_clip, model_ws)
    assert sorted(p.name for p in out.iterdir()) == ["ray.mp4", "single.mp4"]  # no partial segment or staging
