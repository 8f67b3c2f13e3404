"""Progress reporting as a passed-in factory, so library code never prints on its own.

API functions take `progress: ProgressFactory`; the CLI passes `terminal_progress` (tqdm bars on stderr),
tests and library users get `no_progress`.
"""
from __future__ import annotations

import sys
from typing import Any, Protocol

from tqdm import tqdm


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
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                mininterval=0.5 if sys.stderr.isatty() else 5.0)
