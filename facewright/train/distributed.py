"""Multi-GPU training with torchrun (DDP): which process this is, and the process group around a run.

`torchrun --nproc-per-node K -m facewright train ...` starts K copies of the same command; each reads its
rank from the environment, trains on its own share of every batch, and DDP averages the gradients.
Only rank 0 writes checkpoints, previews, metrics and catalog rows. Without torchrun: one process, no group.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from facewright.errors import OptionError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """This process's place in a torchrun job (rank 0 of 1 when not under torchrun)."""
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))


def pick_device(requested: str, place: Dist) -> torch.device:
    """"auto": this rank's GPU when there is one, else the CPU. Refuses a device this process cannot use."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise OptionError(f"unknown device {requested!r}", fix="use cpu, cuda, cuda:N or auto") from exc
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"training runs on cpu or cuda, not {device.type}", fix="use --device cpu, cuda or auto")
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise OptionError("--device cuda was asked for but this machine has no usable CUDA GPU",
                          fix="use --device cpu (or auto), or install the CUDA build of torch")
    if device.index is None:
        return torch.device("cuda", place.local_rank)
    if place.enabled:
        raise OptionError(f"--device {requested} under torchrun: every rank would use the same GPU",
                          fix="give --device cuda (each rank takes its LOCAL_RANK's GPU); pick GPUs with "
                              "CUDA_VISIBLE_DEVICES")
    if device.index >= torch.cuda.device_count():
        raise OptionError(f"--device {requested}: this machine has {torch.cuda.device_count()} GPU(s)",
                          fix=f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


@contextlib.contextmanager
def process_group(place: Dist, device: torch.device) -> Iterator[None]:
    """Join the torchrun job for the duration of a run (NCCL on GPUs, gloo on CPUs)."""
    if not place.enabled or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=place.rank, world_size=place.world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def average_gradients(module: nn.Module, world: int) -> None:
    """All ranks' mean gradient in every rank (what DDP does for the modules it wraps), in one all-reduce."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()
