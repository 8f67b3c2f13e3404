"""`facewright bench web`: how long the pages a reviewer waits on take, served in-process (FastAPI's TestClient:
the app's own work and the HTML/JSON it makes, no network, no browser).

Timed: the overview (GET /), a faceset's review page (GET /faceset/NAME) and one page of its faces
(GET /api/facesets/NAME/faces?limit=60). The workspace comes from facewright.bench.web (built once, cached).
"""
from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from facewright import api
from facewright.web.settings import ServerSettings

TARGET_MS = 300.0  # the budget for each page
PAGE = 60  # faces per page, as the review page asks for them


@dataclass(frozen=True)
class RouteTiming:
    route: str
    times_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]

    def row(self) -> str:
        verdict = "ok" if self.p95 < TARGET_MS else "OVER"
        return f"{self.route:<40} median {self.median:7.1f} ms  p95 {self.p95:7.1f} ms  ({verdict}: target " \
               f"{TARGET_MS:.0f} ms)"


@dataclass(frozen=True)
class WebBench:
    faceset: str
    faces: int  # kept faces in the faceset
    repeats: int
    warmup: int
    routes: list[RouteTiming]
    machine: str = field(default_factory=lambda: f"{platform.platform()}, {platform.machine()}, "
                                                 f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    when: str = field(default_factory=lambda: datetime.now().astimezone().isoformat(timespec="seconds"))

    def rows(self) -> list[str]:
        return [f"faceset {self.faceset}: {self.faces} kept faces; {self.repeats} timed requests per route after "
                f"{self.warmup} warm-up", *(r.row() for r in self.routes), f"machine: {self.machine}",
                f"date: {self.when}"]


def routes_of(faceset: str) -> list[str]:
    return ["/", f"/faceset/{faceset}", f"/api/facesets/{faceset}/faces?limit={PAGE}"]


def measure(workspace: str | Path, faceset: str, *, repeats: int = 20, warmup: int = 2) -> WebBench:
    """Time each route of routes_of(faceset) `repeats` times after `warmup` untimed calls, through the app as
    `facewright serve` builds it (jobs not run)."""
    try:
        with warnings.catch_warnings():  # Starlette's note on httpx's successor: not the bench's reader's concern
            warnings.filterwarnings("ignore", message=".*httpx2")
            from fastapi.testclient import TestClient  # here: only the bench needs the test client, and its httpx
    except ImportError as exc:  # httpx comes with the test extra, not with facewright itself
        raise api.InputError(f"bench web needs FastAPI's test client: {exc}",
                             fix="pip install httpx (or facewright[test])") from exc

    from facewright.web.app import create_app

    if repeats < 1 or warmup < 0:
        raise api.InputError(f"repeats {repeats} and warm-up {warmup}: need at least 1 and 0",
                             fix="e.g. --repeats 20")
    root = Path(workspace)
    token = "bench"
    app = create_app(ServerSettings(workspace=root, token=token), run_jobs=False)
    timings = []
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-Facewright-Token": token}) as client:
        for route in routes_of(faceset):
            accept = {"accept": "application/json" if route.startswith("/api/") else "text/html"}
            times = []
            for number in range(warmup + repeats):
                start = time.perf_counter()
                answer = client.get(route, headers=accept)
                elapsed = (time.perf_counter() - start) * 1000
                if answer.status_code != 200:
                    raise api.InputError(f"GET {route} answered {answer.status_code}: {answer.text[:300]}",
                                         path=root, fix="check the bench workspace (see facewright.bench.web)")
                if number >= warmup:
                    times.append(elapsed)
            timings.append(RouteTiming(route, times))
    faces = api.face_page(faceset, workspace=root, limit=1).total
    return WebBench(faceset, faces, repeats, warmup, timings)
