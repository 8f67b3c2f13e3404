"""`facewright bench web`: its measuring function runs on a tiny workspace and returns figures (never asserted:
timings are the bench's output, not a test's), and its cache never removes a folder it did not make."""
from __future__ import annotations

from datetime import timedelta

import pytest

from facewright import api
from facewright.bench.web import bench_workspace
from facewright.cli import build_parser
from facewright.web.bench import measure, routes_of


@pytest.fixture(scope="module")
def tiny_ws(sample, tmp_path_factory):
    """ben's consent and a faceset of a few of his faces (every 24th frame of his clip)."""
    from facewright.media import read_video, write_image
    from facewright.provenance.consent import utc_today

    root = tmp_path_factory.mktemp("tiny") / "ws"
    photo = write_image(next(read_video(sample("single_face.mp4"))).image, root.parent / "ben.png")
    api.consent_add("ben", photo=photo, role="target", purpose="testing the web bench's measuring",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
    api.extract([sample("single_face.mp4")], "ben", workspace=root, every=24, dedupe=0, size=64)
    return root


def test_measure_times_each_route_and_reports_the_machine(tiny_ws):
    result = measure(tiny_ws, "ben", repeats=2, warmup=1)
    assert result.faceset == "ben" and 1 <= result.faces <= 3
    assert [r.route for r in result.routes] == routes_of("ben")
    for route in result.routes:
        assert len(route.times_ms) == 2 and all(t > 0 for t in route.times_ms)
        assert route.median > 0 and route.p95 >= route.median
    rows = result.rows()
    assert len(rows) == 6 and "CPUs" in rows[-2] and rows[-1].startswith("date: ")
    with pytest.raises(api.InputError):
        measure(tiny_ws, "nobody", repeats=1, warmup=0)  # a page that fails is said, not timed


def test_the_cache_folder_is_never_taken_over(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(api.InputError, match="did not make"):
        bench_workspace(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_bench_web_is_a_command():
    args = build_parser().parse_args(["bench", "web", "--repeats", "3", "--cache", "somewhere"])
    assert (args.repeats, args.warmup, args.min_faces, args.cache) == (3, 2, 500, "somewhere")
