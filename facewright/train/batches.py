"""A step's faces: random batches of A and B drawn from the facesets' uint8 tensors and augmented on the device.

Two seeded random streams make them: which faces are drawn (a CPU generator) and how they are augmented
(a generator on the device, so augmentation never waits on the CPU). Each rank seeds its own from its rank,
so the ranks of a torchrun job learn from different faces. Only rank 0's streams are checkpointed: on
resume the other ranks reseed theirs from the step, which gives them fresh streams, not a replay of the
faces of their first steps.

A's faces are drawn by pose (`--pose-match`): a swap renders A in B's head poses, and a model trained on
all of A's faces alike draws its output toward A's typical pose (measured: a clip of B looking 5 degrees
higher than A's footage came out tilted 3 degrees down after 600 steps). So a share of A's draws favours
the faces whose yaw and pitch lie near B's, weighted by a Gaussian kernel density of B's poses. It pays on
short runs (the demo preset); a longer one has learned the poses, and the narrower draws cost expression.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facewright.config import TrainOptions
from facewright.train.augment import Augmenter, AugmentOptions, Batch
from facewright.train.distributed import Dist
from facewright.train.tensors import FacesetTensors

Snapshot = tuple[Tensor, Tensor, Tensor]  # the global torch, sampling and augmentation random states

POSE_BANDWIDTH = 5.0  # degrees: the kernel's width over yaw and pitch (the landmark model's pose is good to ~1-2)
POSE_REFERENCES = 2000  # at most this many of B's poses make the density (evenly spaced through the faceset)
POSE_FLOOR = 0.01  # a density below this (a face ~3 bandwidths from all of B's poses) is not favoured at all


@dataclass(frozen=True)
class Pair:
    """What one run learns: person A (the face to put in) and person B (the footage), and their consents."""

    a: FacesetTensors
    b: FacesetTensors
    consent_a: str
    consent_b: str


class BatchSource:
    """Draws this rank's share of every step's batch of A and of B, with the streams seeded for this rank."""

    def __init__(self, pair: Pair, options: TrainOptions, device: torch.device, place: Dist):
        self.pair, self.options, self.device, self.rank = pair, options, device, place.rank
        self.per_rank = max(1, options.batch // place.world)
        self.sample_gen = torch.Generator().manual_seed(options.seed * 1000 + place.rank)
        self.augment_gen = torch.Generator(device).manual_seed(options.seed * 1000 + 7 + place.rank)
        augment = AugmentOptions(rotate_deg=options.rotate, flip=options.flip, warp=options.warp,
                                 color_transfer=options.color_transfer)
        self.augmenter = Augmenter(augment, options.resolution, self.augment_gen)
        self.weights_a = pose_weights(pair.a.poses, pair.b.poses, options.pose_match, mirrored=options.flip)

    def next(self) -> tuple[Batch, Batch]:
        """Augmented batches of A and B for one step (B's first: with color transfer A's take B's colors)."""
        batch_b = self._draw(self.pair.b)
        return self._draw(self.pair.a, batch_b if self.options.color_transfer else None, self.weights_a), batch_b

    def _draw(self, faces: FacesetTensors, reference: Batch | None = None, weights: Tensor | None = None) -> Batch:
        if weights is None:
            index = torch.randint(len(faces), (self.per_rank,), generator=self.sample_gen)
        else:
            index = torch.multinomial(weights, self.per_rank, replacement=True, generator=self.sample_gen)
        index = index.to(faces.images.device)
        images, masks, priority = faces.batch(index)
        colors, color_masks = (reference.targets, reference.masks) if reference is not None else (None, None)
        return self.augmenter(images.to(self.device), masks.to(self.device), priority.to(self.device), colors,
                              reference_masks=color_masks)

    def snapshot(self) -> Snapshot:
        """Every random state a step draws from, so that a step that failed can be undone (`rewind`)."""
        return torch.get_rng_state(), self.sample_gen.get_state(), self.augment_gen.get_state()

    def rewind(self, snapshot: Snapshot) -> None:
        torch.set_rng_state(snapshot[0])
        self.sample_gen.set_state(snapshot[1])
        self.augment_gen.set_state(snapshot[2])

    def stream_state(self) -> dict[str, Any]:
        """The checkpoint's "rng"; "augment_device" because a generator's state fits only one on that device."""
        return {"torch": torch.get_rng_state(), "sample": self.sample_gen.get_state(),
                "augment": self.augment_gen.get_state(), "augment_device": str(self.device)}

    def restore_streams(self, rng: dict[str, Any], step: int) -> None:
        """Continue the streams of a checkpoint of `step` (rank 0), or start fresh ones (the other ranks)."""
        torch.set_rng_state(rng["torch"])
        if self.rank == 0:
            self.sample_gen.set_state(rng["sample"])
            if rng.get("augment_device") == str(self.device):
                self.augment_gen.set_state(rng["augment"])
        else:  # only rank 0's streams are saved: the others start fresh ones, not a replay of their first steps
            seed = (self.options.seed * 1000 + self.rank) * 1_000_003 + step
            self.sample_gen.manual_seed(seed)
            self.augment_gen.manual_seed(seed + 7)


def pose_weights(poses: np.ndarray | None, references: np.ndarray | None, amount: float, *,
                 mirrored: bool = False) -> Tensor | None:
    """Drawing probabilities of faces at `poses` (N x 2 yaw, pitch): `amount` of them in proportion to the
    kernel density of `references` at each face's pose, the rest uniform; None (draw uniformly) when
    `amount` is 0, either side has no known pose or no face of A is near B's poses. `mirrored`: flips
    augment the faces, so a face's mirror image (yaw negated) counts as well. Faces of unknown pose, and
    those about 3 bandwidths or more from every pose of B, get only the uniform share.
    """
    if not amount or poses is None or references is None:
        return None
    known = np.isfinite(references).all(axis=1)
    if not known.any() or not np.isfinite(poses).all(axis=1).any():
        return None
    references = references[known].astype(np.float64)
    references = references[np.linspace(0, len(references) - 1, min(len(references), POSE_REFERENCES)).astype(int)]
    poses = poses.astype(np.float64)

    def density(yaw_pitch: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(yaw_pitch), 1000):  # 1000 x 2000 distances at a time: 16 MB
            distance = ((yaw_pitch[start:start + 1000, None, :] - references[None, :, :]) ** 2).sum(axis=2)
            parts.append(np.exp(-distance / (2 * POSE_BANDWIDTH ** 2)).mean(axis=1))
        return np.concatenate(parts)

    matched = density(poses)
    if mirrored:
        matched = (matched + density(poses * np.array([-1.0, 1.0]))) / 2
    matched = np.where(np.nan_to_num(matched, nan=0.0) < POSE_FLOOR, 0.0, matched)
    if not matched.any():  # no face of A near B's poses: nothing to favour
        return None
    weights = (1 - amount) / len(poses) + amount * matched / matched.sum()
    return torch.from_numpy(weights)
