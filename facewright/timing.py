"""Seconds per pipeline stage, for progress bars and benchmarks: `with timer("decode"): ...`; and the CPU a
block of work used, for the benchmarks' cores busy: `with CpuClock() as clock: ...`."""
from __future__ import annotations

import time
from collections.abc import Iterable


class Timer:
    """Accumulates wall seconds per stage; `seconds` keeps `stages` first, then others as they first run."""

    def __init__(self, stages: Iterable[str] = ()) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(stages, 0.0)

    def __call__(self, stage: str) -> _Span:
        return _Span(self.seconds, stage)


class _Span:
    def __init__(self, totals: dict[str, float], stage: str):
        self.totals, self.stage = totals, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.totals[self.stage] = self.totals.get(self.stage, 0.0) + time.perf_counter() - self.start


class CpuClock:
    """The CPU seconds (user + system) of this process and of its children that ended, over a `with` block, and
    its wall seconds: `cores` is how many cores the block kept busy on average. A child still running at the
    end (a pool left open) is not counted."""

    cpu = wall = 0.0

    def __enter__(self) -> CpuClock:
        self._cpu, self._wall = _cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu, self.wall = _cpu_seconds() - self._cpu, time.perf_counter() - self._wall

    @property
    def cores(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0


def _cpu_seconds() -> float:
    import resource  # POSIX only: the rest of this module (Timer) is imported everywhere

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
