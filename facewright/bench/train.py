"""`facewright bench train`: training samples/s, peak memory, and the time split augmentation / model.

The faces are real pixels (centre squares of the WolfgangLanger clip as person A and of single_face.mp4
as B), held as uint8 tensors on the device exactly as in training, so the augmentation cost is the real
one. The first steps (warm-up: allocator, cuDNN autotuning, torch.compile) are not timed.
"""
from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import torch

from facewright import api
from facewright.bench import SAMPLE_A, SAMPLE_B
from facewright.config import TrainOptions, build
from facewright.media.video import read_video
from facewright.progress import ProgressFactory, no_progress
from facewright.train.distributed import from_env, pick_device
from facewright.train.presets import preset_options
from facewright.train.tensors import FacesetTensors
from facewright.train.trainer import Pair, Trainer

FACES = 64  # per person: enough to draw varied batches from


@dataclass(frozen=True)
class TrainBench:
    model: str
    resolution: int
    batch: int
    device: str
    compiled: bool
    gan: bool
    steps: int
    samples_per_second: float  # A + B faces per second
    augment_ms: float  # per step
    model_ms: float  # per step: forward, backward, optimizer, EMA (and discriminator)
    peak_memory_mb: float  # CUDA: peak allocated; CPU: peak resident set of the process

    def row(self) -> str:
        where = "GPU peak allocated" if self.device.startswith("cuda") else "peak RSS"
        return (f"{self.model} {self.resolution}px batch {self.batch} on {self.device}"
                f"{' compiled' if self.compiled else ''}{' +GAN' if self.gan else ''}: "
                f"{self.samples_per_second:.1f} samples/s (A+B), per step augment {self.augment_ms:.1f} ms + "
                f"model {self.model_ms:.1f} ms; {where} {self.peak_memory_mb:.0f} MB; {self.steps} steps timed")


def faces_from_clip(video: Path, resolution: int, count: int = FACES,
                    device: torch.device | str = "cpu") -> FacesetTensors:
    """Centre squares of the first `count` frames, with an elliptical face mask, as a stand-in faceset."""
    crops = [_centre_square(frame.image, resolution) for frame in islice(read_video(video), count)]
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    mask = np.zeros((resolution, resolution), np.uint8)
    cv2.ellipse(mask, (resolution // 2, resolution // 2), (resolution // 3, resolution * 2 // 5), 0, 0, 360, 255, -1)
    images = images.to(device)
    masks = torch.from_numpy(mask)[None, None].repeat(len(crops), 1, 1, 1).to(device)
    return FacesetTensors(video.stem, images, masks, torch.zeros_like(masks), np.zeros((0, 128), np.float32),
                          "whole_face", "bench")


def _centre_square(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(image[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


def bench_train(*, preset: str | None = None, steps: int = 20, warmup: int = 3,
                progress: ProgressFactory = no_progress, **options: object) -> TrainBench:
    """Training samples/s (A+B), peak memory and the augmentation / model time split on real sample pixels:
    `steps` timed steps after `warmup` untimed ones.

    `options`: TrainOptions fields (None: not given) over the `preset`'s.
    """
    return measure(api.asset(SAMPLE_A), api.asset(SAMPLE_B),
                   build(TrainOptions, flags=options, config=preset_options(preset)), steps, warmup, progress)


def measure(video_a: Path, video_b: Path, options: TrainOptions, steps: int, warmup: int,
            progress: ProgressFactory) -> TrainBench:
    """Time training steps of `options` on centre squares of two clips' frames."""
    device = pick_device(options.device, from_env())
    pair = Pair(faces_from_clip(video_a, options.resolution, device=device),
                faces_from_clip(video_b, options.resolution, device=device), "", "")
    options = dataclasses.replace(options, preview_every=0, warmup=1)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-train-") as tmp:
        trainer = Trainer(options, pair, Path(tmp), progress=progress, signer=None)  # no previews: none signed
        trainer.build()
        cuda = trainer.device.type == "cuda"
        for _ in range(warmup):
            trainer.optimize(*trainer.next_batches())
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(trainer.device)
        with progress(total=2 * steps, desc="bench train", unit="step") as bar:
            start = _now(cuda)
            for _ in range(steps):  # throughput: no waiting between steps, as in training
                trainer.optimize(*trainer.next_batches())
                bar.update(1)
            seconds = _now(cuda) - start
            augment = model = 0.0
            for _ in range(steps):  # the split: synchronised around each part
                start = _now(cuda)
                batches = trainer.next_batches()
                middle = _now(cuda)
                trainer.optimize(*batches)
                augment, model = augment + middle - start, model + _now(cuda) - middle
                bar.update(1)
    peak = (torch.cuda.max_memory_allocated(trainer.device) / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return TrainBench(options.model, options.resolution, options.batch, str(trainer.device), options.compile,
                      options.gan_power > 0, steps, 2 * options.batch * steps / seconds,
                      1000 * augment / steps, 1000 * model / steps, peak)


def _now(cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()  # only for timing the split; training itself never waits like this
    return time.perf_counter()
