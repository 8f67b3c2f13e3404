"""Quieting native libraries: MediaPipe's LiteRT prints INFO lines on stderr that Python logging cannot stop."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, Self


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (model creation and teardown only)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class QuietFirstCall:
    """Calls through; the first call runs under quiet_stderr (LiteRT logs memory notes on first inference)."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, function, *args):
        if self.done:
            return function(*args)
        with quiet_stderr():
            result = function(*args)
        self.done = True
        return result


class MediaPipeTask:
    """A context manager owning MediaPipe task objects (`tasks()`), closed quietly; and, for video mode,
    the strictly increasing integer milliseconds MediaPipe wants (`next_ms`)."""

    _task: Any = None
    _last_ms: int = -1

    def tasks(self) -> tuple[Any, ...]:
        return (self._task,)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with quiet_stderr():
            for task in self.tasks():
                if task is not None:
                    task.close()

    def next_ms(self, time_ms: float | None) -> int:
        """`time_ms` rounded, nudged past the previous call's (equal times: VFR rounding, a repeated frame)."""
        self._last_ms = max(self._last_ms + 1, round(time_ms or 0))
        return self._last_ms
