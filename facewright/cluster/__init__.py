"""Work beyond one call on one machine: many shots in a batch, and the chunks of a job on many processes.

`jobs.py` and `batch.py`: `facewright batch JOBS.toml`, the shots of a jobs file swapped in turn.
`make_pool` (here): where the chunks of a `swap` or `extract` run, the choice of `--cluster local|ray` and
`--workers N`; `ray.py`: the Ray backend (the optional extra `pip install 'facewright[ray]'`). Whatever the
pool, the driver alone writes the catalog and holds the signing key; workers get a model path, embeddings and
options, write their own files atomically and return plain data.
"""
from __future__ import annotations

from enum import StrEnum

from facewright.cluster.ray import RayPool
from facewright.errors import OptionError
from facewright.workers import Pool, local_pool


class Cluster(StrEnum):
    LOCAL = "local"  # a process per core on this machine
    RAY = "ray"  # Ray tasks on the cluster at $RAY_ADDRESS, or on a Ray started here


def make_pool(workers: int | None, cluster: str = "local", device: str = "auto") -> Pool:
    """The pool of `--workers N --cluster NAME`.

    "local": `facewright.workers.local_pool(workers)` (None or 0: $FACEWRIGHT_WORKERS, else one per core; 1: this
    process alone; the driver is one of them, as in the pool `swap` and `extract` make), even where $RAY_ADDRESS is
    set: that variable only says which Ray cluster `--cluster ray` joins.
    "ray": a `RayPool` on the cluster at $RAY_ADDRESS (else a Ray started on this machine); `workers` caps how
    many tasks run at once (None or 0: as many as the cluster has CPUs). Where the cluster has GPUs and `device`
    is not "cpu", a swap's model runs in GPU tasks and its compositing in CPU tasks (`RayPool.chain`).
    """
    try:
        choice = Cluster(cluster)
    except ValueError:
        raise OptionError(f"unknown cluster {cluster!r}",
                          fix=f"use --cluster {' or '.join(c.value for c in Cluster)}") from None
    if choice is Cluster.LOCAL:
        return local_pool(workers, helps=True)
    return RayPool(workers=workers or None, render_gpus=0 if device == "cpu" else None)
