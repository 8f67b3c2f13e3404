"""`facewright bench gpu prepare|finish`: the workstation's half of the GPU bench (the node's is gpu_node.py).

prepare BUNDLE: in a bench workspace of its own (<workspace>/bench/gpu-<id>/, kept for `finish`), the sample
pair gets its demo-scoped consents and facesets; the bundle gets both people's training faces at the preset's
resolution (evenly spaced, at most --max-faces each) and every aligned crop the swap of B's clip will ask
the model to render. Those crops are found by running that very swap with a recording stand-in for the model
(the output of that run, B's own frames labelled and marked, is deleted), so `finish` later asks for exactly
the same crops. The bundle holds arrays and a manifest with their sha256s; no consent record, key or catalog.

finish OUT: the swap of B's clip again, in the same workspace, with the node's rendered faces standing in for
the model (looked up by each crop's hash), so color matching, masks, hands, detail, blending, the label, the
watermark and the signature are the workstation's, as in any swap; then `score`, and a row in
bench/quality.jsonl naming the card, the budget and the throughput figures.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facewright import __version__, api
from facewright.bench import SAMPLE_A, SAMPLE_B
from facewright.bench.gpu_node import BUNDLE_FORMAT, FIGURES, MANIFEST, PRESET
from facewright.bench.quality import (
    QualityRow,
    _pair_workspace,
    append_row,
    headline_metrics,
    keep_report,
    results_file,
)
from facewright.config import MarkOptions, SwapOptions, VideoOptions, build
from facewright.demo import demo_consent
from facewright.errors import InputError, OptionError
from facewright.files import atomic_path, sha256_file
from facewright.media import probe
from facewright.progress import ProgressFactory, no_progress
from facewright.swap.model import Crops, SwapModel
from facewright.swap.run import swap as run_swap
from facewright.train.data import MIN_FACES, load_faceset
from facewright.train.presets import preset_options
from facewright.workspace import Workspace

A, B = "quality-a", "quality-b"  # the bench's sample pair, as bench quality names it
MAX_BUNDLE_MB = 50
MAX_FACES = 120  # per person: 2 x 120 faces of 256 px and the target's crops stay under MAX_BUNDLE_MB
PREPARED = "prepare.json"  # in the prepare folder: what finish needs to find the workspace and the clip


def crop_key(crop: np.ndarray) -> str:
    """A crop's identity: the sha1 of its pixels (prepare and finish compute the same crops bit for bit)."""
    return hashlib.sha1(np.ascontiguousarray(crop).tobytes()).hexdigest()


@dataclass(frozen=True)
class _Recorder(SwapModel):
    """Stands in for a model while prepare runs the swap: keeps every crop it is asked to render, and renders
    nothing (an empty mask: the frames come out as they went in)."""

    size: int = 0
    seen: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return self.size

    def render(self, crops: Crops) -> tuple[np.ndarray, np.ndarray]:
        for crop in crops:
            self.seen.setdefault(crop_key(crop), crop.copy())
        return crops.astype(np.float32) / 255, np.zeros(crops.shape[:3], np.float32)


@dataclass(frozen=True)
class _Replay(SwapModel):
    """Stands in for the model in finish: the node's rendering of each crop, by the crop's hash."""

    size: int = 0
    faces: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return self.size

    def render(self, crops: Crops) -> tuple[np.ndarray, np.ndarray]:
        found = []
        for crop in crops:
            key = crop_key(crop)
            if key not in self.faces:
                raise InputError("the GPU run has no rendering of a face this swap needs", path=self.checkpoint,
                                 fix="finish on the workstation that prepared the bundle, with the same facewright "
                                     "version and sample clip")
            found.append(self.faces[key])
        faces = np.stack([f for f, _ in found]).astype(np.float32) / 255
        masks = np.stack([m for _, m in found]).astype(np.float32) / 255
        return faces, masks


def _stand_in(cls: type, made_from: Path, consents: tuple[str, str], face_type: str, size: int, name: str,
              step: int = 0, **extra: Any) -> SwapModel:
    """A stand-in for a trained model; `made_from`: the file the faces come from, whose sha256 the output's
    manifest names as the model's (the bundle's faces of B while preparing, the node's figures.json after)."""
    return cls(name=name, checkpoint=made_from, sha256=sha256_file(made_from), step=step, source=A, target=B,
               face_type=face_type, consent_ids=consents, network=None, device=None, size=size, **extra)


# --- prepare -------------------------------------------------------------------------------------------------


def prepare(bundle: str | Path, *, workspace: str | Path | None = None, preset: str = PRESET,
            max_faces: int = MAX_FACES, progress: ProgressFactory = no_progress) -> dict[str, Any]:
    """Write the bundle folder (new or empty); returns its manifest."""
    bundle = Path(bundle)
    if bundle.exists() and any(bundle.iterdir()):
        raise OptionError("the bundle folder is not empty", path=bundle, fix="give a new folder")
    resolution = preset_options(preset).get("resolution")
    if not resolution:
        raise OptionError(f"preset {preset} names no resolution", fix=f"use {PRESET} or another training preset")
    if max_faces < 8:
        raise OptionError(f"--max-faces {max_faces} is too few to train on", fix=f"the default is {MAX_FACES}")
    bundle_id = secrets.token_hex(4)
    folder = results_file(None, workspace).parent / f"gpu-{bundle_id}"
    root = folder / "ws"
    videos = (api.asset(SAMPLE_A), api.asset(SAMPLE_B))
    _pair_workspace(root, *videos, progress, every=tuple(_sampling(video, max_faces) for video in videos))
    # the records _pair_workspace made: demo_consent returns a person's active one
    consents = (demo_consent(root, videos[0], A).id, demo_consent(root, videos[1], B).id)
    bundle.mkdir(parents=True, exist_ok=True)
    with Workspace.open(root) as ws:
        people = {key: _person(ws, name, consent, resolution, max_faces, bundle)
                  for key, name, consent in (("a", A, consents[0]), ("b", B, consents[1]))}
        recorder = _stand_in(_Recorder, bundle / people["b"]["file"], consents, people["b"]["face_type"],
                             resolution, "gpu-prepare")
        with tempfile.TemporaryDirectory(prefix="facewright-gpu-prepare-") as tmp:
            _swap(ws, recorder, Path(tmp) / "recorded.mp4", progress)
    keys = list(recorder.seen)
    with atomic_path(bundle / "target.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, keys=np.array(keys), crops=np.stack([recorder.seen[k] for k in keys]))
    files = {name: sha256_file(bundle / name) for name in ("a.npz", "b.npz", "target.npz")}
    size_mb = sum((bundle / name).stat().st_size for name in files) / 1e6
    if size_mb > MAX_BUNDLE_MB:
        for name in files:
            (bundle / name).unlink()
        raise OptionError(f"the bundle would hold {size_mb:.0f} MB, over the {MAX_BUNDLE_MB} MB a node run carries",
                          path=bundle, fix="give a smaller --max-faces")
    manifest = {"format": BUNDLE_FORMAT, "id": bundle_id, "facewright": __version__, "preset": preset,
                "resolution": resolution, "a": people["a"], "b": people["b"],
                "target": {"file": "target.npz", "crops": len(keys), "video": SAMPLE_B}, "files": files,
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    with atomic_path(bundle / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    with atomic_path(folder / PREPARED) as tmp:
        tmp.write_text(json.dumps({"bundle": bundle_id, "consents": consents, "resolution": resolution,
                                   "face_type": people["b"]["face_type"], "video": SAMPLE_B}))
    manifest["size_mb"] = round(size_mb, 1)
    return manifest


def _sampling(video: Path, max_faces: int) -> int:
    """Every how many frames of `video` to extract: the bundle takes at most `max_faces` of a person's faces,
    evenly spaced, so frames beyond 1.5 times that (some frames have no usable face) would be read for
    nothing. Never under twice the faces training needs."""
    frames = probe(video).video.frames or 0
    return max(1, frames // max(int(1.5 * max_faces), 2 * MIN_FACES))


def _person(ws: Workspace, name: str, consent: str, resolution: int, max_faces: int, bundle: Path) -> dict[str, Any]:
    faces = load_faceset(ws, name, resolution)
    pick = np.unique(np.linspace(0, len(faces) - 1, min(len(faces), max_faces)).round().astype(int))
    file = "a.npz" if name == A else "b.npz"
    with atomic_path(bundle / file) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, images=faces.images[pick].numpy(), masks=faces.masks[pick].numpy(),
                            priority=faces.priority[pick].numpy(), poses=faces.poses[pick])
    return {"name": name, "file": file, "faces": int(len(pick)), "face_type": faces.face_type, "sha256": faces.sha256,
            "consent": consent}


def _swap(ws: Workspace, model: SwapModel, output: Path, progress: ProgressFactory):
    """B's sample clip swapped with the stand-in `model`, on the CPU, with the default swap options."""
    options = build(SwapOptions, flags={"device": "cpu"})
    [result] = run_swap(ws, api.asset(SAMPLE_B), output, model.name, options, MarkOptions(), VideoOptions(),
                        signer=api.keys_show(), trust=api.consent_trust(), progress=progress, loaded=model)
    return result


# --- finish --------------------------------------------------------------------------------------------------


def finish(out: str | Path, *, workspace: str | Path | None = None, output: str | Path | None = None,
           progress: ProgressFactory = no_progress) -> QualityRow:
    """Composite, mark, sign and score the node's rendering; append the row to bench/quality.jsonl."""
    out = Path(out)
    figures_path = out / FIGURES
    if not figures_path.is_file():
        raise InputError("no figures.json: not the OUT folder of `bench gpu run`, or the run did not finish",
                         path=out, fix="bring back the whole OUT folder of a finished run")
    figures = json.loads(figures_path.read_text())
    results = results_file(None, workspace)
    folder = results.parent / f"gpu-{figures['bundle']}"
    if not (folder / PREPARED).is_file():
        raise InputError(f"bundle {figures['bundle']} was not prepared in this workspace", path=folder,
                         fix="finish in the workspace that ran `bench gpu prepare` (--workspace)")
    prepared = json.loads((folder / PREPARED).read_text())
    faces = _rendered(out, figures)
    training = figures["training"]
    replay = _stand_in(_Replay, figures_path, tuple(prepared["consents"]), prepared["face_type"],
                       prepared["resolution"], f"gpu-{figures['bundle']}", training["steps"], faces=faces)
    swapped = Path(output) if output else folder / f"swap-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.mp4"
    root = folder / "ws"
    started = time.perf_counter()
    with Workspace.open(root) as ws:
        result = _swap(ws, replay, swapped, progress)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="facewright-gpu-score-") as tmp:
        report = api.score(result.output, source=A, target_video=api.asset(prepared["video"]), workspace=root,
                           report=Path(tmp) / "score", progress=progress)
        stamp = datetime.now(UTC)
        kept = keep_report(Path(tmp) / "score", results.parent / f"quality-{stamp:%Y%m%dT%H%M%SZ}-gpu")
    best = max(figures["throughput"], key=lambda t: t["samples_per_second"])
    row = QualityRow(stamp.isoformat(timespec="seconds"), __version__, "gpu bundle", figures["preset"],
                     f"{figures['budget_minutes']:g} minutes", training["steps"], figures["card"],
                     training["seconds"], training["samples_per_second"], training["last_loss"],
                     round(result.frames / seconds, 2) if seconds else 0.0, headline_metrics(report.summary),
                     str(kept.resolve()), gpu={"throughput": figures["throughput"], "reference": figures["reference"],
                                               "ratio_to_reference": figures["ratio_to_reference"],
                                               "best_samples_per_second": best["samples_per_second"],
                                               "render": figures["render"], "torch": figures["torch"],
                                               "output": str(result.output)})
    append_row(results, row)
    return row


def _rendered(out: Path, figures: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    faces: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in figures["render"]["files"]:
        path = out / name
        if not path.is_file():
            raise InputError("a rendered-faces file of the run is missing", path=path,
                             fix="bring back the whole OUT folder")
        with np.load(path) as arrays:
            for key, face, mask in zip(arrays["keys"], arrays["faces"], arrays["masks"], strict=True):
                faces[str(key)] = (face, mask)
    return faces

