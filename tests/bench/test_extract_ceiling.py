"""The references `bench extract` sets its pools against: the ceiling (each chunk in a process of its own, all at
once, against the same chunks one after another here) and the cores a run kept busy (CPU of the driver and of
the workers that ended, over the wall time)."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import pytest

from facewright.bench.extract import STAGES, Ceiling, ExtractBench, Floor, _gather, chunks_ceiling, scaling_rows
from facewright.errors import WorkerLostError
from facewright.media.segments import keyframe_index, plan_chunks
from facewright.timing import CpuClock


@pytest.mark.slow
def test_the_ceiling_times_each_chunk_in_a_process_of_its_own_and_the_same_chunks_in_one(long_clip):
    chunks = plan_chunks(keyframe_index(long_clip), 2, 24)  # the 144-frame clip in two halves
    assert [c.frames for c in chunks] == [72, 72]
    ceiling = chunks_ceiling(long_clip, chunks)
    assert ceiling.frames == (72, 72)  # each process decoded its whole chunk
    assert min(ceiling.seconds) > 0 and ceiling.one_process > 0
    assert ceiling.fps == pytest.approx(144 / max(ceiling.seconds))
    assert ceiling.ratio == pytest.approx(ceiling.one_process / max(ceiling.seconds))
    assert "each on one chunk of 72 + 72 frames" in ceiling.row()
    assert chunks_ceiling(long_clip, chunks[:1]) is None  # one chunk: no pool to set a ceiling for


class _Process:
    def __init__(self, exitcode):
        self.exitcode = exitcode


def test_a_ceiling_process_that_fails_or_dies_is_a_typed_error_not_a_wait(tmp_path):
    results = queue.Queue()
    results.put((1, 72, 0.5))
    results.put((0, None, "InvalidMediaError: frame 10 cannot be decoded on its own"))
    with pytest.raises(WorkerLostError, match="failed: InvalidMediaError: frame 10") as failed:
        _gather({0: _Process(None), 1: _Process(None)}, results, tmp_path / "clip.mp4", timeout=60)
    assert failed.value.path == tmp_path / "clip.mp4"
    results.put((1, 72, 0.5))
    start = time.monotonic()
    with pytest.raises(WorkerLostError, match="died before it reported"):
        _gather({0: _Process(-9), 1: _Process(None)}, results, tmp_path / "clip.mp4", timeout=60)
    assert time.monotonic() - start < 30  # it noticed the dead process; it did not wait out the timeout
    results.put((0, 72, 0.4))
    results.put((1, 70, 0.5))
    assert _gather({0: _Process(0), 1: _Process(0)}, results, tmp_path / "clip.mp4", timeout=60) == {0: (72, 0.4),
                                                                                                      1: (70, 0.5)}
    results.put((0, 72, 0.4))  # process 0 reported, then exited with an error: not a process that died unreported
    late = threading.Timer(1.5, results.put, [(1, 70, 0.5)])  # process 1 reports after a wait for it timed out
    late.start()
    assert _gather({0: _Process(1), 1: _Process(None)}, results, tmp_path / "clip.mp4", timeout=60) == {
        0: (72, 0.4), 1: (70, 0.5)}
    late.join()


def test_the_scaling_rows_set_each_pool_against_one_worker_and_its_ceiling():
    def run(workers, seconds):
        return ExtractBench("clip.mp4", 472, 75, seconds, dict.fromkeys(STAGES, 1.0), 2, workers, 1.2)

    one, two = run(1, 8.0), run(2, 5.9)
    rows = scaling_rows(Floor(472, 472, 8.4), [one, two], Ceiling((216, 256), (4.2, 4.8), 7.6))
    assert rows[1].startswith("ceiling of 2 workers") and "= 1.58 x the same work in one process" in rows[1]
    assert rows[2] == "1 worker(s): 59.0 frames/s = 1.05 x the floor"
    assert rows[3] == ("2 worker(s): 80.0 frames/s = 1.42 x the floor, 1.36 x one worker, 81% of the ceiling "
                       "(98.3 frames/s = 1.67 x one worker)")
    assert "1.20 of 2 CPU cores busy" in one.rows()[0]


def test_the_cpu_clock_counts_this_process_and_its_children_that_ended():
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    with CpuClock() as clock:
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert clock.cpu >= 0.3  # the child's CPU, counted once it ended
    assert clock.wall > 0 and clock.cores == pytest.approx(clock.cpu / clock.wall)
