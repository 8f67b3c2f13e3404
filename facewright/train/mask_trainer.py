"""`facewright mask train FACESET`: a per-faceset occlusion mask model, learned from synthetic occlusions.

Each step takes a batch of the faceset's crops, moves them a little (flip, rotation, scale, shift), pastes
random occluders over the faces (train.occluders) and teaches the segmenter the label that is left: the
face minus what covers it. Loss: binary cross-entropy plus soft Dice (the face is most of the crop; Dice
keeps a small occluder from being ignored). Every `preview_every` steps the model is measured on held-out
crops with occluders pasted by a fixed seed (IoU of the face, and the share of occluder pixels it leaves
out of the face: the figure a swap depends on), and a preview is written, marked like every preview.

The folder is mask-models/<name>/: checkpoints/ (as the pair trainer's: atomic, verified, resumable),
metrics.jsonl, preview.png, mask_config.json.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facewright.config import MaskTrainOptions, to_dict
from facewright.errors import OptionError, ProvenanceError
from facewright.media.image import Frame
from facewright.names import check_name
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import ConsentRecord
from facewright.provenance.enforce import consent_for_any_role
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, mark_image
from facewright.provenance.trust import Trust
from facewright.train.augment import from_crops
from facewright.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from facewright.train.distributed import Dist, pick_device
from facewright.train.mask_data import MaskSet, load_mask_set
from facewright.train.models.segmenter import create_segmenter
from facewright.train.occluders import occlude
from facewright.train.run import model_lock, write_json
from facewright.train.trainer import StopRequests
from facewright.workspace import Workspace

MASK_MODELS = "mask-models"  # workspace folder: mask-models/<name>/{checkpoints/, preview.png, metrics.jsonl}
KIND = "mask"  # a mask checkpoint's "kind": a pair model's checkpoint has none
VALIDATION_SEED = 12345  # the held-out occlusions are the same at every step and in every run
VARIANTS = 3  # occluded versions of each held-out crop
PREVIEW_FACES = 6
ROTATE, SCALE, SHIFT = 12.0, 0.08, 0.05  # degrees, fraction, fraction of the side
TINT = np.array([255, 40, 40], np.float32)  # the preview paints what the model calls "not face" red


@dataclass(frozen=True)
class MaskTrainResult:
    folder: Path
    checkpoint: Path | None
    steps: int
    first_loss: float | None
    last_loss: float | None
    iou: float | None  # held-out face IoU at the last measurement
    occluder_recall: float | None  # held-out share of occluder pixels (over the face) left out of the mask
    seconds: float
    stopped: str
    faces: int = 0
    hands_found: int = 0


def mask_folder(ws: Workspace, name: str) -> Path:
    return ws.root / MASK_MODELS / check_name(name, "mask model name")


def train_mask(ws: Workspace, faceset: str, options: MaskTrainOptions, *, name: str | None = None,
               resume: bool = False, corrections: Path | None = None, progress: ProgressFactory = no_progress,
               signer: SigningIdentity | None, trust: Trust) -> MaskTrainResult:
    """Train (or with `resume`, continue) the mask model `name` (default: the faceset's name) on `faceset`."""
    name = name or faceset
    folder = mask_folder(ws, name)
    state = _resume_state(folder, faceset) if resume else None
    if state is not None:
        options = dataclasses.replace(options, model=state["model"]["name"],
                                      resolution=int(state["model"]["resolution"]))
    with torch.device("meta"):  # a bad architecture or resolution fails before any face loads
        create_segmenter(options.model, options.resolution)
    if signer is None and options.preview_every:
        raise ProvenanceError("mask previews show the person's face and must be marked, but no signing identity "
                              "was given", path=folder, fix="pass signer= (facewright.api does)")
    with model_lock(folder):
        consent = consent_for_any_role(ws, faceset, trust=trust)
        data = load_mask_set(ws, faceset, options.resolution, corrections=corrections)
        if state is not None and state["faceset"]["sha256"] != data.sha256:
            raise OptionError(f"mask model {name!r} learned another version of faceset {faceset!r}",
                              fix="train a new one (without --resume), or under another --name")
        trainer = MaskTrainer(options, data, folder, consent, signer=signer, progress=progress, state=state)
        write_json(folder / "mask_config.json", {"faceset": faceset, "corrections": str(corrections or ""),
                                                 **dataclasses.asdict(options)})
        return trainer.run()


def _resume_state(folder: Path, faceset: str) -> dict[str, Any] | None:
    found = latest_checkpoint(folder / "checkpoints")
    if found is None:
        return None
    state = load_checkpoint(found)
    if state.get("kind") != KIND or state["faceset"]["name"] != faceset:
        raise OptionError(f"{folder.name!r} is not a mask model of faceset {faceset!r}",
                          fix="give the faceset it was trained on, or another --name")
    return state


class MaskTrainer:
    def __init__(self, options: MaskTrainOptions, data: MaskSet, folder: Path, consent: ConsentRecord, *,
                 signer: SigningIdentity | None, progress: ProgressFactory = no_progress,
                 state: dict[str, Any] | None = None):
        self.options, self.data, self.folder, self.consent = options, data, folder, consent
        self.signer, self.progress = signer, progress
        self.device = pick_device(options.device, Dist())
        torch.manual_seed(options.seed)
        self.model = create_segmenter(options.model, options.resolution).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=options.lr, weight_decay=1e-4)
        self.rng = np.random.default_rng(options.seed)
        self.step, self.seconds = 0, 0.0
        self.validation = held_out_batch(data)
        self.measured: dict[str, float] = {}
        self.measured_step = -1
        if state is not None:
            self.model.load_state_dict(state["weights"])
            self.opt.load_state_dict(state["opt"])
            self.rng.bit_generator.state = state["rng"]
            self.step, self.seconds = int(state["step"]), float(state.get("seconds", 0.0))

    def run(self) -> MaskTrainResult:
        opts, first = self.options, self.step
        losses: list[float] = []
        start = time.perf_counter()
        stopped = "steps"
        checkpoint = None
        with self.progress(total=opts.steps or None, desc="mask train", unit="step", initial=self.step) as bar, \
                StopRequests() as stops:
            while True:
                if opts.steps and self.step >= opts.steps:
                    break
                if opts.minutes and time.perf_counter() - start >= 60 * opts.minutes:
                    stopped = "minutes"
                    break
                if stops.requested:
                    stopped = "interrupted"
                    break
                loss = self.train_step()
                self.step += 1
                losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", **({"iou": f"{self.measured['iou']:.3f}"} if self.measured else {}))
                if opts.preview_every and self.step % opts.preview_every == 0:
                    self.measure(losses)
                if self.step % opts.save_every == 0:
                    checkpoint = self.save(start)
            if self.step > first:
                if self.measured_step != self.step:
                    self.measure(losses)
                checkpoint = self.save(start)
        if stopped == "interrupted":
            raise KeyboardInterrupt
        return MaskTrainResult(self.folder, checkpoint or latest_checkpoint(self.folder / "checkpoints"), self.step,
                               losses[0] if losses else None, losses[-1] if losses else None,
                               self.measured.get("iou"), self.measured.get("occluder_recall"),
                               time.perf_counter() - start, stopped, len(self.data), self.data.hands_found)

    def train_step(self) -> float:
        self.model.train()
        images, labels = self.batch()
        for group in self.opt.param_groups:
            group["lr"] = self.lr()
        logits = self.model(images)
        loss = segmentation_loss(logits, labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def lr(self) -> float:
        """Constant, then a cosine decay to a tenth over the last fifth of a step budget."""
        steps, lr = self.options.steps, self.options.lr
        if not steps or self.step < 0.8 * steps:
            return lr
        done = (self.step - 0.8 * steps) / (0.2 * steps)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))

    def batch(self) -> tuple[Tensor, Tensor]:
        picks = self.rng.choice(self.data.train_indices, size=self.options.batch)
        pairs = [augmented(self.data.images[i], self.data.labels[i], self.rng, self.data, self.options.clean)
                 for i in picks]
        images = np.stack([p[0] for p in pairs])
        labels = np.stack([p[1] for p in pairs])
        return _tensors(images, labels, self.device)

    @torch.no_grad()
    def measure(self, losses: list[float]) -> None:
        """Held-out IoU and occluder recall; a metrics line and (with a signer) the preview."""
        images, labels, occluders = self.validation
        self.model.eval()
        x, _ = _tensors(images, labels, self.device)
        predicted = self.model.predict(x)[:, 0].cpu().numpy()
        self.measured, self.measured_step = mask_metrics(predicted, labels, occluders), self.step
        record = {"step": self.step, "loss": round(float(np.mean(losses[-20:])), 6) if losses else None,
                  "lr": self.lr(), **{k: round(v, 4) for k, v in self.measured.items()}}
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.signer is not None:
            shown = slice(0, PREVIEW_FACES * VARIANTS, VARIANTS)  # one occluded version of each face
            grid = preview_grid(images[shown], predicted[shown])
            plan = MarkPlan(Label("manipulated"), (self.consent.id,), model=self.folder.name)
            mark_image(grid, self.folder / "preview.png", plan, self.signer)

    def save(self, start: float) -> Path:
        state = {"kind": KIND, "model": {"name": self.model.name, "resolution": self.model.resolution},
                 "weights": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                 "seconds": self.seconds + time.perf_counter() - start, "rng": self.rng.bit_generator.state,
                 "config": to_dict(self.options), "metrics": self.measured,
                 "faceset": {"name": self.data.name, "sha256": self.data.sha256, "faces": len(self.data),
                             "face_type": self.data.face_type},
                 "consent": self.consent.id}
        return save_checkpoint(state, self.folder / "checkpoints", self.step, self.options.keep)


def augmented(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, data: MaskSet,
              clean: float) -> tuple[np.ndarray, np.ndarray]:
    """One training pair: the crop moved a little, occluders pasted, its colors jittered."""
    size = image.shape[0]
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    angle = rng.uniform(-ROTATE, ROTATE)
    scale = 1 + rng.uniform(-SCALE, SCALE)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-SHIFT, SHIFT, 2) * size
    image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    label = cv2.warpAffine(np.ascontiguousarray(label), matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    image, label, _ = occlude(image, label, rng, data.bank, clean=clean)
    gain, bias, gamma = rng.uniform(0.7, 1.3), rng.uniform(-25, 25), rng.uniform(0.8, 1.25)
    jittered = 255 * (np.clip(image.astype(np.float32) * gain + bias, 0, 255) / 255) ** gamma
    return np.clip(jittered, 0, 255).astype(np.uint8), label


def held_out_batch(data: MaskSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out crops, VARIANTS occluded versions each (a fixed seed): images, labels, occluder alphas."""
    rng = np.random.default_rng(VALIDATION_SEED)
    images, labels, occluders = [], [], []
    for i in data.held_out:
        for _ in range(VARIANTS):
            image, label, alpha = occlude(data.images[i], data.labels[i], rng, data.bank, clean=0.0)
            images.append(image)
            labels.append(label)
            occluders.append(alpha * (data.labels[i] > 0.5))
    return np.stack(images), np.stack(labels), np.stack(occluders)


def segmentation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy plus soft Dice (1 - Dice) of the face, per crop then averaged."""
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    probability = torch.sigmoid(logits)
    overlap = (probability * labels).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + labels.sum(dim=(1, 2, 3))
    dice = 1 - (2 * overlap + 1) / (total + 1)
    return bce + dice.mean()


def mask_metrics(predicted: np.ndarray, labels: np.ndarray, occluders: np.ndarray) -> dict[str, float]:
    """`iou`: of the face (> 0.5) against the labels, pooled; `occluder_recall`: the share of occluder pixels
    over the face that the prediction leaves out of it."""
    face, truth = predicted > 0.5, labels > 0.5
    union = np.logical_or(face, truth).sum()
    iou = float(np.logical_and(face, truth).sum() / union) if union else 1.0
    covered = occluders > 0.5
    recall = float((~face & covered).sum() / covered.sum()) if covered.any() else 1.0
    return {"iou": iou, "occluder_recall": recall}


def preview_grid(images: np.ndarray, predicted: np.ndarray) -> Frame:
    """Two rows: the occluded crops, and the same with what the model calls "not face" painted red."""
    tinted = []
    for image, mask in zip(images, predicted, strict=True):
        outside = (1 - mask)[..., None] * 0.6
        tinted.append((image * (1 - outside) + TINT * outside).astype(np.uint8))
    return np.concatenate([np.concatenate(list(images), axis=1), np.concatenate(tinted, axis=1)], axis=0)


def _tensors(images: np.ndarray, labels: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor]:
    x = from_crops(images, device)
    y = torch.from_numpy(np.ascontiguousarray(labels, np.float32)).to(device)[:, None]
    return x, y

