"""The GPU bench end to end on the CPU: prepare a bundle, run it where facewright's other dependencies cannot be
imported (a bare GPU node has only torch, numpy, pillow and opencv), finish: a marked, signed, scored swap."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facewright import api
from facewright.bench import gpu
from facewright.bench.gpu_node import FIGURES, LOSS_LOG, load_person, read_bundle
from facewright.bench.quality import read_rows, results_file
from facewright.errors import InputError, NoDeviceError, OptionError

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_THE_NODE = ("av", "mediapipe", "dlib", "c2pa", "cryptography", "tqdm", "scipy")


def _python(code: str, *args: str, bare: Path | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter; with `bare`, a folder whose stand-ins make every import of
    NOT_ON_THE_NODE fail, as on a node where they are not installed."""
    path = [str(bare)] if bare else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


def _bare_node(folder: Path) -> Path:
    for name in NOT_ON_THE_NODE:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ModuleNotFoundError('no {name} on a bare node')\n")
    return folder


def test_the_trainer_models_renderer_and_node_bench_import_without_media_or_provenance_packages():
    code = ("import sys\nimport facewright.train.trainer, facewright.train.models, facewright.swap.model, "
            "facewright.bench.gpu_node\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_ON_THE_NODE) - {'tqdm'}!r}))")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-bench")
    workspace, bundle = root / "ws", root / "bundle"
    manifest = gpu.prepare(bundle, workspace=workspace, preset="demo", max_faces=24)
    return workspace, bundle, manifest


def test_prepare_writes_a_small_checked_bundle_of_arrays_only(prepared):
    workspace, bundle, manifest = prepared
    assert sorted(p.name for p in bundle.iterdir()) == ["a.npz", "b.npz", "manifest.json", "target.npz"]
    assert read_bundle(bundle)["id"] == manifest["id"]
    assert manifest["resolution"] == 64 and manifest["a"]["faces"] == 24 and manifest["b"]["faces"] == 24
    assert manifest["target"]["crops"] >= 72  # every frame of B's clip has a face, plus the color samples
    with np.load(bundle / "target.npz") as arrays:
        assert arrays["crops"].shape[1:] == (64, 64, 3) and arrays["crops"].dtype == np.uint8
        assert len(set(arrays["keys"])) == len(arrays["keys"])
    assert manifest["size_mb"] < 50
    a = load_person(bundle, manifest["a"], torch.device("cpu"))  # with the head poses --pose-match draws by
    assert len(a) == 24 and a.poses.shape == (24, 2) and np.isfinite(a.poses).all()


def test_a_changed_bundle_file_is_refused_by_name(prepared, tmp_path):
    _, bundle, _ = prepared
    copy = tmp_path / "bundle"
    copy.mkdir()
    for path in bundle.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    with open(copy / "b.npz", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputError, match="sha256") as caught:
        read_bundle(copy)
    assert caught.value.path == copy / "b.npz"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_run_without_cuda_refuses_with_exit_2(prepared, tmp_path):
    from facewright.bench.gpu_node import run

    with pytest.raises(NoDeviceError) as caught:
        run(prepared[1], tmp_path / "out")
    assert caught.value.exit_code == 2 and "--device cpu" in caught.value.fix
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [{"preset": "gpu-256"}, {"batches": []}, {"timed_steps": 0}, {"minutes": 0}],
                         ids=["resolution", "no-batches", "no-steps", "no-minutes"])
def test_run_refuses_wrong_options_before_measuring(prepared, tmp_path, options):
    from facewright.bench.gpu_node import run

    with pytest.raises(OptionError):
        run(prepared[1], tmp_path / "out", device="cpu", **{"preset": "demo", **options})
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def node_run(prepared, tmp_path_factory):
    """`bench gpu run` as a bare node runs it: a fresh interpreter that cannot import av, c2pa, dlib..."""
    _, bundle, _ = prepared
    node = tmp_path_factory.mktemp("node")
    out = node / "out"
    code = "import sys\nfrom facewright.bench.gpu_node import main\nsys.exit(main(sys.argv[1:]))"
    done = _python(code, str(bundle), str(out), "--device", "cpu", "--preset", "demo", "--minutes", "0.05",
                   "--batches", "4", "--timed-steps", "2", "--no-compile", bare=_bare_node(node / "missing"))
    assert done.returncode == 0, done.stderr + done.stdout
    return out, done.stdout


def test_node_run_writes_figures_loss_log_and_rendered_faces_only(node_run, prepared):
    out, printed = node_run
    figures = json.loads((out / FIGURES).read_text())
    assert figures["card"].startswith("cpu") and figures["bundle"] == prepared[2]["id"]
    [eager] = figures["throughput"]
    assert eager["batch"] == 4 and not eager["compiled"] and eager["samples_per_second"] > 0
    assert figures["reference"][0]["samples_per_second"] > 0 and figures["ratio_to_reference"][0]["ratio"] > 0
    assert figures["training"]["steps"] > 0 and (out / LOSS_LOG).read_text().strip() and figures["complete"]
    assert figures["render"]["faces"] == prepared[2]["target"]["crops"]
    assert sorted(p.name for p in out.iterdir()) == sorted([FIGURES, LOSS_LOG, *figures["render"]["files"]])
    assert "samples/s" in printed and "bench gpu finish" in printed


@pytest.mark.slow
def test_finish_composites_marks_signs_scores_and_appends_the_row(node_run, prepared, tmp_path, few_score_samples):
    workspace = prepared[0]
    row = gpu.finish(node_run[0], workspace=workspace, output=tmp_path / "swapped.mp4")
    assert row.preset == "gpu bundle" and row.device.startswith("cpu") and row.steps > 0
    assert row.metrics["swapped_frames"] == pytest.approx(1.0)
    assert row.gpu["throughput"][0]["batch"] == 4
    assert read_rows(results_file(None, workspace))[-1] == row
    [report] = api.verify([tmp_path / "swapped.mp4"], workspace=workspace / "bench" / f"gpu-{prepared[2]['id']}" / "ws")
    assert report.outcome == "verified"


def test_finish_refuses_what_is_not_a_run(prepared, tmp_path):
    with pytest.raises(InputError, match="figures.json"):
        gpu.finish(tmp_path, workspace=prepared[0])
