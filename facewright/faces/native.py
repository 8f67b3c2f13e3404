"""Quieting native libraries: MediaPipe's LiteRT prints INFO lines on stderr that Python logging cannot stop."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


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
