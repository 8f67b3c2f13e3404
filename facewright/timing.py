"""Seconds per pipeline stage, for progress bars and benchmarks: `with timer("decode"): ...`."""
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
