"""Shared fixtures: real sample media from the asset registry (fetched once into the user's cache)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from facewright.assets import asset_path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs `pytest -n 2 --dist loadfile`: two test processes on the machine's cores, each module's
    # tests in one of them (its module-scoped fixtures built once). Each is one core's worth, as a pool's worker
    # is (torch, OpenCV and the BLAS libraries at one thread; the subprocesses a test starts inherit it), else
    # each spins a thread per core and the two slow each other's training several times over. For the same reason
    # a command's default pool is this process alone (FACEWRIGHT_WORKERS=1): the tests of chunks on workers ask for
    # them by --workers; a default pool beside the other test process only paid its workers' start-up (the
    # extraction and CLI tests took 160 s instead of 122 s).
    from facewright.workers import one_thread_worker

    one_thread_worker()
    os.environ.setdefault("FACEWRIGHT_WORKERS", "1")


DURATIONS = Path(__file__).with_name("durations.json")  # seconds per module, from scripts/test_durations.py
UNMEASURED_SLOW = 30  # seconds guessed for a module with slow tests that is not in DURATIONS yet


def pytest_collection_modifyitems(config, items):
    """The longest modules first (each module's order kept), by the seconds DURATIONS measured: the test processes
    take modules one by one, so the long ones start while the short ones fill in around them, instead of one
    running on alone at the end. A module not measured yet counts UNMEASURED_SLOW seconds if it has slow tests."""
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    root = Path(str(config.rootpath))

    def weight(item) -> float:
        measured = seconds.get(item.path.relative_to(root).as_posix())
        return measured if measured is not None else UNMEASURED_SLOW if item.path in slow_modules else 0

    items.sort(key=lambda item: -weight(item))


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory) -> Iterator[Path]:
    """Every test signs with one throw-away identity: the user's own keys folder is never touched."""
    folder = tmp_path_factory.mktemp("keys") / "keys"
    previous = os.environ.get("FACEWRIGHT_KEYS")
    os.environ["FACEWRIGHT_KEYS"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("FACEWRIGHT_KEYS", None)
    else:
        os.environ["FACEWRIGHT_KEYS"] = previous


@pytest.fixture(scope="session")
def sample():
    """sample("WolfgangLanger_Pexels.mp4") -> verified cached path (fetched through the registry if missing)."""
    return asset_path


@pytest.fixture
def workspace_env(tmp_path, monkeypatch) -> Path:
    """A fresh workspace location for the test, via FACEWRIGHT_WORKSPACE."""
    root = tmp_path / "ws"
    monkeypatch.setenv("FACEWRIGHT_WORKSPACE", str(root))
    return root


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def pair_ws(sample, tmp_path_factory) -> Path:
    """A workspace with consents and 64 px facesets for A ("anna", WolfgangLanger clip, source role) and B
    ("ben", single_face.mp4, target role): what the trainer and swap tests train and swap with."""
    from facewright import api  # here, not at the top: tests of the bare modules need not import the whole API
    from facewright.media import read_video, write_image
    from facewright.provenance.consent import utc_today

    root = tmp_path_factory.mktemp("pair") / "ws"
    for video, identity, role in (("WolfgangLanger_Pexels.mp4", "anna", "source"),
                                  ("single_face.mp4", "ben", "target")):
        photo = write_image(next(read_video(sample(video))).image, root.parent / f"{identity}.png")
        api.consent_add(identity, photo=photo, role=role, purpose="testing facewright's trainer and swap",
                        channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
        api.extract([sample(video)], identity, workspace=root, every=3 if identity == "anna" else 1, dedupe=0,
                    size=64)
    return root


SWAP_MODEL = "swap-tiny"


@pytest.fixture(scope="session")
def model_ws(pair_ws):
    """pair_ws with a tiny anna -> ben model (SWAP_MODEL), what the swap and score tests swap with."""
    from facewright import api

    api.train("anna", "ben", name=SWAP_MODEL, workspace=pair_ws, steps=30, model="test-ae", resolution=64, batch=4,
              preview_every=0, warmup=5, lr=1e-3)
    return pair_ws


@pytest.fixture
def few_score_samples(monkeypatch):
    """`api.score` measures identity on 12 frames: for tests of what is built around a score (a bench's row),
    not of the score itself; the identity models are most of a score's time on a CPU."""
    from facewright import api

    monkeypatch.setattr(api, "score", functools.partial(api.score, samples=12))


@pytest.fixture
def full_disk(monkeypatch):
    """Every video writer's disk fills up after its 10th frame (OSError ENOSPC), as a real full disk would."""
    import errno

    from facewright.media.writer import VideoWriter

    write = VideoWriter.write

    def fill_up(self, image, pts=None):
        if self.frames_written == 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, image, pts)

    monkeypatch.setattr(VideoWriter, "write", fill_up)


@pytest.fixture(scope="session")
def long_clip(sample, tmp_path_factory):
    """Ben's clip forwards then backwards (144 frames, 4.8 s, no cut), a keyframe every 24 frames, his audio."""
    from facewright.config import VideoOptions
    from facewright.media import probe, read_video
    from facewright.media.writer import VideoWriter

    source = sample("single_face.mp4")
    frames = list(read_video(source))
    path = tmp_path_factory.mktemp("long-clip") / "ben-long.mp4"
    info = probe(source).video
    with VideoWriter(path, width=info.width, height=info.height, fps=30, audio_from=source,
                     options=VideoOptions(crf=16, preset="veryfast")) as writer:
        writer.stream.options = {**writer.stream.options, "g": "24", "keyint_min": "24"}
        for frame in frames + frames[::-1]:
            writer.write(frame.image)
    return path
