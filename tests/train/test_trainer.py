"""The trainer on the two sample facesets: it learns, resumes exactly, keeps good checkpoints, and refuses
what it cannot train on."""
from __future__ import annotations

import ast
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

import facewright.train
from facewright import api
from facewright.config import TrainOptions
from facewright.errors import (
    CheckpointError,
    ConsentError,
    DeviceMemoryError,
    InputError,
    OptionError,
    ProvenanceError,
)
from facewright.media import read_image
from facewright.provenance.consent import utc_today
from facewright.provenance.keys import load_identity
from facewright.train.batches import Pair
from facewright.train.checkpoint import list_checkpoints, load_checkpoint
from facewright.train.distributed import Dist
from facewright.train.run import find_resume, model_folder, pair_prefix, train_pair
from facewright.train.tensors import FacesetTensors
from facewright.train.trainer import Trainer
from facewright.workspace import Workspace

FAST = {"model": "test-ae", "resolution": 64, "batch": 4, "preview_every": 0, "warmup": 10, "lr": 1e-3}


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_tiny_model_learns_both_faces(pair_ws):
    # Augmentation off: this measures that the model and loop learn, not how hard the random warp makes it.
    result = api.train("anna", "ben", name="learn", workspace=pair_ws, steps=300, log_every=10, warp=0.0,
                       rotate=0.0, **FAST)
    records = _metrics(result.folder)
    first = records[0]["loss_a"] + records[0]["loss_b"]
    last = sum(r["loss_a"] + r["loss_b"] for r in records[-3:]) / 3
    assert last < first / 2, (first, last)
    assert result.step == 300 and result.stopped == "steps" and result.checkpoint.is_file()


EXACT = {**FAST, "log_every": 1, "save_every": 1000}


@pytest.fixture(scope="module")
def straight(pair_ws) -> list[float]:
    """The losses of 12 uninterrupted steps, which every interrupted and resumed run must reproduce."""
    result = api.train("anna", "ben", name="straight", workspace=pair_ws, steps=12, **EXACT)
    return [r["loss"] for r in _metrics(result.folder)]


def test_resume_continues_exactly(pair_ws, straight):
    api.train("anna", "ben", name="resumed", workspace=pair_ws, steps=6, **EXACT)
    resumed = api.train("anna", "ben", name="resumed", workspace=pair_ws, steps=12, resume=True, **EXACT)
    assert resumed.step == 12
    got = [r["loss"] for r in _metrics(resumed.folder)]
    assert got == pytest.approx(straight, rel=1e-5, abs=1e-7)


def test_interrupt_stops_after_the_step_and_resumes_exactly(pair_ws, straight, monkeypatch):
    real = Trainer.optimize

    def interrupted(self, *batches):
        if self.step == 3:  # the signal lands in the middle of step 4: that step still finishes
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *batches)

    monkeypatch.setattr(Trainer, "optimize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.train("anna", "ben", name="ctrl-c", workspace=pair_ws, steps=12, **EXACT)
    [saved] = list_checkpoints(pair_ws / "models" / "ctrl-c" / "checkpoints")
    assert load_checkpoint(saved)["step"] == 4
    monkeypatch.setattr(Trainer, "optimize", real)
    resumed = api.train("anna", "ben", name="ctrl-c", workspace=pair_ws, steps=12, resume=True, **EXACT)
    assert [r["loss"] for r in _metrics(resumed.folder)] == pytest.approx(straight, rel=1e-5, abs=1e-7)


def test_cosine_schedule_falls_to_a_tenth_over_the_step_budget_and_resumes_on_it(pair_ws):
    options = {**EXACT, "warmup": 2, "schedule": "cosine"}
    api.train("anna", "ben", name="cosine", workspace=pair_ws, steps=10, **options)
    lrs = [r["lr"] for r in _metrics(pair_ws / "models" / "cosine")]
    assert lrs[1] == pytest.approx(1e-3, rel=0.05)  # warm, at the top of the cosine
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False))  # then falling
    assert lrs[-1] == pytest.approx(1e-4 + 9e-4 * (1 + math.cos(math.pi * 9 / 10)) / 2)  # set after step 10's draw
    api.train("anna", "ben", name="cosine", workspace=pair_ws, steps=20, resume=True, **options)
    resumed = [r["lr"] for r in _metrics(pair_ws / "models" / "cosine")][10:]
    assert resumed[0] < lrs[1] and resumed[-1] == pytest.approx(1e-4 + 9e-4 * (1 + math.cos(math.pi * 19 / 20)) / 2)


def test_a_time_budget_stops_the_run_and_drives_the_cosine(pair_ws):
    result = api.train("anna", "ben", name="minutes", workspace=pair_ws, minutes=0.03, **{**EXACT, "warmup": 1,
                                                                                          "schedule": "cosine"})
    lrs = [r["lr"] for r in _metrics(result.folder)]
    assert result.stopped == "minutes" and result.step == len(lrs) > 2 and 1.7 < result.seconds < 8
    assert lrs[0] > lrs[-1] >= 1e-4 and lrs[-1] < 3e-4  # most of the way down when the time was up


def test_resume_refuses_another_architecture_or_pair_and_takes_a_new_lr(pair_ws):
    api.train("anna", "ben", name="strict", workspace=pair_ws, steps=2, **FAST)
    with pytest.raises(OptionError, match="--resolution 96 was given"):
        api.train("anna", "ben", name="strict", workspace=pair_ws, steps=4, resume=True, **{**FAST, "resolution": 96})
    photo = pair_ws.parent / "anna.png"
    api.consent_add("anna-too", photo=photo, role="source", purpose="testing facewright's trainer",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=pair_ws)
    with pytest.raises(OptionError, match="learned anna to ben, not anna-too to ben"):
        api.train("anna-too", "ben", name="strict", workspace=pair_ws, steps=4, resume=True, **FAST)
    result = api.train("anna", "ben", name="strict", workspace=pair_ws, steps=4, resume=True,
                       **{**FAST, "lr": 5e-5, "warmup": 1, "log_every": 1})
    assert [r["lr"] for r in _metrics(result.folder)][-1] == pytest.approx(5e-5)


def test_resume_without_a_name_finds_the_pairs_model(pair_ws):
    first = api.train("anna", "ben", workspace=pair_ws, steps=2, **FAST)
    not_architecture = {k: v for k, v in FAST.items() if k not in ("model", "resolution")}
    resumed = api.train("anna", "ben", workspace=pair_ws, steps=4, resume=True, **not_architecture)
    assert resumed.folder == first.folder and resumed.step == 4


def test_default_model_name_names_neither_person_and_older_names_still_resume(pair_ws, tmp_path):
    """The default folder is pair-<hash of the two names>-MODEL-RESOLUTION; a model an older version named
    SRC-to-DST-MODEL-RESOLUTION is still the pair's model, found with or without the architecture given."""
    options = TrainOptions(**FAST)
    with Workspace.open(pair_ws) as ws:
        default = model_folder(ws, "anna", "ben", options, None)
    assert default.name == f"{pair_prefix('anna', 'ben')}test-ae-64" and default.name.startswith("pair-")
    assert "anna" not in default.name and "ben" not in default.name and len(pair_prefix("anna", "ben")) == 14
    older = api.train("anna", "ben", name="older-naming", workspace=pair_ws, steps=2, **FAST)
    with Workspace.init(tmp_path / "ws") as ws:
        legacy = ws.root / "models" / "anna-to-ben-test-ae-64"
        (legacy / "checkpoints").mkdir(parents=True)
        shutil.copy(older.checkpoint, legacy / "checkpoints" / older.checkpoint.name)
        assert model_folder(ws, "anna", "ben", options, None) == legacy
        for explicit in (set(FAST), set()):
            found = find_resume(ws, "anna", "ben", options, True, None, explicit)
            assert found.folder == legacy and found.path.name == older.checkpoint.name


def test_pruning_keeps_the_new_checkpoint_and_resuming_earlier_sets_later_ones_aside(pair_ws):
    result = api.train("anna", "ben", name="aside", workspace=pair_ws, steps=6, save_every=2, keep=2, **FAST)
    folder = result.folder / "checkpoints"
    earlier, later = list_checkpoints(folder)
    api.train("anna", "ben", name="aside", workspace=pair_ws, steps=5, resume=str(earlier), keep=2, **FAST)
    assert [p.name for p in list_checkpoints(folder)] == ["step_0000004.pt", "step_0000005.pt"]
    assert (folder / "rejected" / later.name).is_file()


def test_checkpoint_describes_itself_and_keeps_the_last_k(pair_ws):
    result = api.train("anna", "ben", name="keep", workspace=pair_ws, steps=8, save_every=2, keep=2, **FAST)
    files = list_checkpoints(result.folder / "checkpoints")
    assert [f.name for f in files] == ["step_0000006.pt", "step_0000008.pt"]
    state = load_checkpoint(files[-1])
    assert state["model"]["name"] == "test-ae" and state["step"] == 8
    assert set(state["facesets"]) == {"a", "b"} and len(state["facesets"]["a"]["sha256"]) == 64
    assert state["consent"]["a"] and state["consent"]["b"] and state["config"]["batch"] == 4


def test_corrupt_checkpoint_is_refused_and_the_good_one_kept(pair_ws):
    result = api.train("anna", "ben", name="corrupt", workspace=pair_ws, steps=4, save_every=2, **FAST)
    good, bad = list_checkpoints(result.folder / "checkpoints")
    bad.write_bytes(bad.read_bytes()[:1000])  # a truncated write
    good_bytes = good.read_bytes()
    with pytest.raises(CheckpointError, match="cannot be read") as caught:
        api.train("anna", "ben", name="corrupt", workspace=pair_ws, steps=6, resume=True, **FAST)
    assert str(good) in caught.value.fix and good.read_bytes() == good_bytes
    resumed = api.train("anna", "ben", name="corrupt", workspace=pair_ws, steps=6, resume=str(good), **FAST)
    assert resumed.step == 6


def test_preview_metrics_and_loss_plot(pair_ws):
    result = api.train("anna", "ben", name="preview", workspace=pair_ws, steps=4,
                       **{**FAST, "preview_every": 2, "timelapse": True, "log_every": 1})
    preview = read_image(result.folder / "preview.png")
    assert preview.shape[0] == 6 * 64  # rows A, A->A, A->B, B, B->B, B->A
    [report] = api.verify([result.folder / "preview.png"], workspace=pair_ws)  # it shows swapped faces
    assert report.outcome == "verified" and report.label == "ai-generated"
    assert len(list((result.folder / "previews").glob("step_*.png"))) == 2
    assert read_image(result.folder / "loss.png").shape == (320, 640, 3)
    assert [r["step"] for r in _metrics(result.folder)] == [1, 2, 3, 4]


def test_out_of_memory_suggests_a_smaller_batch_and_keeps_the_checkpoint(pair_ws, monkeypatch):
    real = Trainer.optimize

    def oom_at_third(self, *batches):
        if self.step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *batches)

    monkeypatch.setattr(Trainer, "optimize", oom_at_third)
    with pytest.raises(DeviceMemoryError, match="--batch 4") as caught:
        api.train("anna", "ben", name="oom", workspace=pair_ws, steps=10, **{**FAST, "batch": 8})
    assert "--batch 4" in caught.value.fix and load_checkpoint(caught.value.path)["step"] == 2


def test_out_of_memory_before_any_step_says_there_is_no_checkpoint(pair_ws, monkeypatch):
    def oom(self, *batches):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "optimize", oom)
    with pytest.raises(DeviceMemoryError) as caught:
        api.train("anna", "ben", name="oom-0", workspace=pair_ws, steps=10, **FAST)
    assert "no step had finished" in caught.value.fix and "--resume" not in caught.value.fix


def test_training_needs_both_consents_for_their_roles(pair_ws):
    with pytest.raises(ConsentError, match="ben"):  # ben consented to be the target only
        api.train("ben", "anna", name="reversed", workspace=pair_ws, steps=1, **FAST)


def test_tiny_faceset_is_refused_with_its_count(pair_ws):
    photo = pair_ws.parent / "ben.png"
    api.consent_add("ben-still", photo=photo, role="target", purpose="testing facewright's trainer",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=pair_ws)
    api.extract([photo], "ben-still", workspace=pair_ws, size=64)
    with pytest.raises(InputError, match="has 1 faces; training needs at least 32"):
        api.train("anna", "ben-still", name="tiny", workspace=pair_ws, steps=1, **FAST)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_and_write_one_checkpoint(pair_ws, tmp_path):
    env = {**os.environ, "FACEWRIGHT_WORKSPACE": str(pair_ws), "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", "2", "-m",
               "facewright", "train", "--src", "anna", "--dst", "ben", "--name", "ddp", "--model", "test-ae",
               "--resolution", "64", "--batch", "4", "--device", "cpu", "--preview-every", "0", "--gan-power", "0.1"]
    done = subprocess.run([*command, "--steps", "5"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [checkpoint] = list_checkpoints(pair_ws / "models" / "ddp" / "checkpoints")
    state = load_checkpoint(checkpoint)
    assert state["step"] == 5 and state["disc"] is not None
    # A time budget is each rank's own clock: the ranks must still agree on the step they stop at.
    done = subprocess.run([*command, "--resume", "--steps", "1000", "--minutes", "0.002"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(list_checkpoints(pair_ws / "models" / "ddp" / "checkpoints")[-1])["step"] == 10


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_a_device_or_model_that_cannot_be_used_is_refused_before_loading_faces(pair_ws):
    with pytest.raises(OptionError, match="no usable CUDA GPU"):
        api.train("anna", "ben", name="no-gpu", workspace=pair_ws, steps=1, **{**FAST, "device": "cuda"})
    with pytest.raises(OptionError, match="unknown model 'liae-xl'"):
        api.train("anna", "ben", name="no-model", workspace=pair_ws, steps=1, **{**FAST, "model": "liae-xl"})
    assert not (pair_ws / "models" / "no-gpu").exists() and not (pair_ws / "models" / "no-model").exists()


def _blank_pair() -> Pair:
    faces = FacesetTensors("blank", torch.zeros(2, 3, 64, 64, dtype=torch.uint8),
                           torch.zeros(2, 1, 64, 64, dtype=torch.uint8), torch.zeros(2, 1, 64, 64, dtype=torch.uint8),
                           np.zeros((0, 128), np.float32), "whole_face", "0" * 64)
    return Pair(faces, faces, "consent-a", "consent-b")


def test_previews_need_a_signer_on_the_main_rank_only(tmp_path):
    options = TrainOptions(**{**FAST, "preview_every": 2, "device": "cpu"})
    with pytest.raises(ProvenanceError, match="no signing identity"):
        Trainer(options, _blank_pair(), tmp_path / "run", signer=None)
    Trainer(options, _blank_pair(), tmp_path / "run", signer=None, place=Dist(rank=1, world=2))  # writes none
    Trainer(TrainOptions(**{**FAST, "device": "cpu"}), _blank_pair(), tmp_path / "run", signer=None)
    assert Trainer(options, _blank_pair(), tmp_path / "run", signer=load_identity()).previews is not None
    assert not (tmp_path / "run").exists()


def test_train_pair_without_a_signer_is_refused_before_it_touches_the_model_folder(pair_ws):
    options = TrainOptions(**{**FAST, "preview_every": 2, "steps": 1})
    with Workspace.open(pair_ws) as ws, pytest.raises(ProvenanceError):
        train_pair(ws, "anna", "ben", options, name="unsigned", signer=None, trust=api.consent_trust())
    assert not (pair_ws / "models" / "unsigned").exists()


def test_the_training_code_is_given_its_signing_identity_and_never_loads_one():
    sources = sorted(Path(facewright.train.__file__).parent.rglob("*.py"))
    names = {p.name: {getattr(node, key, None) for node in ast.walk(ast.parse(p.read_text()))
                      for key in ("id", "attr", "name")} for p in sources}  # names, imports, attributes
    assert names and not [name for name, used in names.items() if "load_identity" in used]


def test_a_second_train_of_a_model_under_lock_is_refused_naming_the_process(pair_ws, tmp_path):
    """Two runs writing one model's checkpoints would interleave them: the second is refused at once."""
    from facewright.errors import BusyError
    from facewright.train.run import model_lock

    env = {**os.environ, "FACEWRIGHT_WORKSPACE": str(pair_ws), "OMP_NUM_THREADS": "1"}
    lock = pair_ws / "models" / "locked" / ".lock"
    with open(tmp_path / "stderr.txt", "w") as err:
        first = subprocess.Popen([sys.executable, "-m", "facewright", "train", "--src", "anna", "--dst", "ben",
                                  "--name", "locked", "--model", "test-ae", "--resolution", "64", "--batch", "4",
                                  "--device", "cpu", "--preview-every", "0", "--steps", "100000"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while not (lock.is_file() and f'"pid": {first.pid}' in lock.read_text()):
                assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()
                time.sleep(0.05)
            with pytest.raises(BusyError, match=f"model locked is in use by process {first.pid}\\b") as caught:
                api.train("anna", "ben", name="locked", workspace=pair_ws, steps=1, **FAST)
            assert caught.value.exit_code == 2 and "another --name" in caught.value.fix
        finally:
            first.kill()  # SIGKILL: no cleanup runs, and the kernel drops its lock all the same
            first.wait()
    with model_lock(lock.parent):
        assert str(os.getpid()) in lock.read_text()
