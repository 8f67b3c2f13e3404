"""A step's faces: random batches of A and B drawn from the facesets' uint8 tensors and augmented on the device.

Two seeded random streams make them: which faces are drawn (a CPU generator) and how they are augmented
(a generator on the device, so augmentation never waits on the CPU). Each rank seeds its own from its rank,
so the ranks of a torchrun job learn from different faces. Only rank 0's streams are checkpointed: on
resume the other ranks reseed theirs from the step, which gives them fresh streams, not a replay of the
faces of their first steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from facewright.config import TrainOptions
from facewright.train.augment import Augmenter, AugmentOptions, Batch
from facewright.train.distributed import Dist
from facewright.train.tensors import FacesetTensors

Snapshot = tuple[Tensor, Tensor, Tensor]  # the global torch, sampling and augmentation random states


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

    def next(self) -> tuple[Batch, Batch]:
        """Augmented batches of A and B for one step (B's first: with color transfer A's take B's colors)."""
        batch_b = self._draw(self.pair.b)
        return self._draw(self.pair.a, batch_b if self.options.color_transfer else None), batch_b

    def _draw(self, faces: FacesetTensors, reference: Batch | None = None) -> Batch:
        index = torch.randint(len(faces), (self.per_rank,), generator=self.sample_gen).to(faces.images.device)
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
