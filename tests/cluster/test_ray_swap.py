"""A long video swapped in chunks on a Ray cluster started by the test (2 CPUs, this machine) equals the
single-process swap and verifies, though the Ray worker rendering one chunk is killed midway through it:
Ray runs that chunk again, and nothing half-written is left beside the output."""
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

KILL_AFTER = 0.5  # seconds into its first try the worker rendering chunk 1 dies


def kill_midway(folder: str, fn, context, item):
    """`fn(context, item)`, but the first try of the render of chunk 1 has its process killed midway."""
    if fn is swap_chunks.render_chunk and item.chunk.index == 1:
        marker = Path(folder) / "render-1-tries"
        first = not marker.exists()
        with marker.open("a") as f:
            f.write("try\n")
        if first:
            threading.Timer(KILL_AFTER, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return fn(context, item)


class KillingPool:
    """A pool whose render of chunk 1 loses its worker once."""

    def __init__(self, pool, folder: Path):
        self.pool, self.folder, self.workers = pool, folder, pool.workers

    def map(self, fn, context, items, done=None):
        return self.pool.map(functools.partial(kill_midway, str(self.folder), fn), context, items, done)


@pytest.mark.slow
def test_a_video_swapped_on_ray_with_a_worker_killed_midway_equals_the_single_process_swap(
        model_ws, long_clip, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from facewright.cluster.ray import RayPool

    monkeypatch.setattr(swap_chunks, "MIN_CHUNK_SECONDS", 1.0)  # the clip is 4.8 s
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir(), markers.mkdir()
    results = {}
    with Workspace.open(model_ws) as ws, RayPool(local_cpus=2) as ray_pool:
        for name, pool in (("single", None), ("ray", KillingPool(ray_pool, markers))):
            [results[name]] = run_swap(ws, long_clip, out / f"{name}.mp4", MODEL,
                                       SwapOptions(workers=1 if pool is None else 2), MarkOptions(), VideoOptions(),
                                       signer=api.keys_show(), trust=api.consent_trust(),
                                       payloads=itertools.count(21), pool=pool)
            if pool is None:  # an id is unique per catalog: the second output takes it over
                ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{21:016x}",))
    assert (markers / "render-1-tries").read_text() == "try\ntry\n"  # killed once, run again
    assert "swapped in 2 chunks on 2 workers" in results["ray"].notes
    assert_same_swap(results["single"], results["ray"], long_clip, model_ws)
    assert sorted(p.name for p in out.iterdir()) == ["ray.mp4", "single.mp4"]  # no partial segment or staging
