"""Progress reporting as a passed-in factory, so library code never prints on its own.

API functions take `progress: ProgressFactory`; the CLI passes `terminal_progress` (tqdm bars on stderr),
tests and library users get `no_progress`.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, **values: Any) -> Any: ...
    def close(self) -> Any: ...
    def __enter__(self) -> Bar: ...
    def __exit__(self, *exc: object) -> Any: ...


class ProgressFactory(Protocol):
    def __call__(self, *, total: float | None, desc: str, unit: str = "it", initial: float = 0) -> Bar: ...


class _SilentBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def no_progress(*, total: float | None, desc: str, unit: str = "it", initial: float = 0) -> Bar:
    return _SilentBar()


def terminal_progress(*, total: float | None, desc: str, unit: str = "it", initial: float = 0) -> Bar:
    """A tqdm bar on stderr with rate and ETA (`initial`: work done before, e.g. by a resumed run's
    earlier runs, shown but not counted in the rate); plain lines when stderr is not a terminal."""
    try:
        from tqdm import tqdm  # here: a bare GPU node (torch, numpy, pillow, opencv) has no tqdm
    except ImportError:
        return _LineBar(total, desc, unit, initial)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                mininterval=0.5 if sys.stderr.isatty() else 5.0)


class _LineBar(_SilentBar):
    """Without tqdm: a line on stderr every LINE_SECONDS with the count, the rate and the last postfix."""

    LINE_SECONDS = 10.0

    def __init__(self, total: float | None, desc: str, unit: str, initial: float):
        self.total, self.desc, self.unit, self.count = total, desc, unit, initial
        self.started = self.printed = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.count += n
        if time.monotonic() - self.printed >= self.LINE_SECONDS:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        self._line()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> None:
        self.printed = time.monotonic()
        rate = self.count / max(1e-9, self.printed - self.started)
        total = f"/{self.total:g}" if self.total else ""
        print(f"{self.desc}: {self.count:g}{total} {self.unit} ({rate:.1f} {self.unit}/s) {self.postfix}".rstrip(),
              file=sys.stderr, flush=True)
