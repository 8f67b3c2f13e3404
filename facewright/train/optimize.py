"""One optimization step of a pair model, and everything that step updates.

A batch of A faces and one of B faces are reconstructed by the model as themselves (A->A, B->B) and scored
with masked DSSIM + L1, the mask loss and, when on, the adversarial loss from a patch discriminator that
sees A's faces. AdamW with warm-up (then, with --schedule cosine, a decay over the budget) and gradient
clipping updates the weights, then their EMA follows, then (GAN on) the discriminator takes its own step on
the same fakes. On CUDA the step runs under bf16 autocast in channels_last, and `--compile` compiles it.
Under torchrun DDP averages the model's gradients over the ranks and `average_gradients` does the same for
the discriminator's, which DDP does not wrap.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
import torch.distributed as dist
from torch import Tensor, nn

from facewright.config import TrainOptions
from facewright.train.augment import Batch
from facewright.train.distributed import Dist, average_gradients
from facewright.train.ema import EMA
from facewright.train.losses import gan_d_loss, gan_g_loss, mask_loss, reconstruction_loss
from facewright.train.models import PairModel, create_discriminator, create_model

LR_FLOOR = 0.1  # --schedule cosine ends the run at this share of --lr


class PairStep(nn.Module):
    """Both reconstructions in one forward call, so DDP sees one forward per backward."""

    def __init__(self, model: PairModel):
        super().__init__()
        self.model = model

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        image_a, mask_a = self.model(a, "a")
        image_b, mask_b = self.model(b, "b")
        return image_a, mask_a, image_b, mask_b


class PairOptimizer:
    """The pair model, its EMA, the discriminator (GAN on), their optimizers and warm-up schedule.

    They are made in a fixed order right after seeding torch with `options.seed`, so the initial weights
    (the model's, then the discriminator's) depend on the seed alone.
    """

    def __init__(self, options: TrainOptions, device: torch.device, place: Dist):
        self.options, self.place, self.cuda = options, place, device.type == "cuda"
        torch.manual_seed(options.seed)
        model = create_model(options.model, options.resolution, **options.model_options()).to(device)
        self.model = model.to(memory_format=torch.channels_last) if self.cuda else model
        self.ema = EMA(self.model, options.ema)
        self.disc = create_discriminator(options.resolution).to(device) if options.gan_power > 0 else None
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=options.lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.progress = 0.0  # share of the run's budget done; the trainer sets it before each step (cosine)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: self.lr_factor(step))
        self.opt_d = (torch.optim.AdamW(self.disc.parameters(), lr=options.lr, betas=(0.5, 0.999), weight_decay=0.0)
                      if self.disc is not None else None)
        self.step_fn = self._step_function(device)

    def _step_function(self, device: torch.device) -> Callable:
        step_module: nn.Module = PairStep(self.model)
        if self.place.enabled:
            ids = [device.index] if self.cuda else None
            step_module = nn.parallel.DistributedDataParallel(step_module, device_ids=ids)
        # dynamic=False: a batch size is one graph (a new one recompiles, never a slower shape-generic one)
        return torch.compile(step_module, dynamic=False) if self.options.compile else step_module

    def lr_factor(self, step: int) -> float:
        """The learning rate after optimizer step `step`, a share of --lr: linear warm-up, then constant or a
        cosine from 1 to LR_FLOOR over the budget (`progress`)."""
        warm = min(1.0, (step + 1) / max(1, self.options.warmup))
        if self.options.schedule == "constant":
            return warm
        return warm * (LR_FLOOR + (1 - LR_FLOOR) * (1 + math.cos(math.pi * min(1.0, self.progress))) / 2)

    @property
    def lr(self) -> float:
        return self.sched.get_last_lr()[0]

    def set_lr(self, lr: float) -> None:
        """Make `lr` the peak learning rate from now on (a resumed run may be given a new --lr)."""
        pairs = [(self.opt, self.sched)] + ([(self.opt_d, None)] if self.opt_d is not None else [])
        for optimizer, scheduler in pairs:
            factor = scheduler.lr_lambdas[0](scheduler.last_epoch) if scheduler is not None else 1.0
            for group in optimizer.param_groups:
                group["initial_lr"] = lr
                group["lr"] = lr * factor
            if scheduler is not None:
                scheduler.base_lrs = [lr] * len(optimizer.param_groups)

    def optimize(self, batch_a: Batch, batch_b: Batch, step: int) -> dict[str, Tensor]:
        """Optimizer step `step` (and a discriminator step when the GAN is on); returns the losses."""
        inputs_a, inputs_b = self.layout(batch_a.inputs), self.layout(batch_b.inputs)
        gan_on = self.disc is not None and step >= self.options.gan_start
        with self.autocast():
            out = self.step_fn(inputs_a, inputs_b)
            losses = self._generator_losses(batch_a, batch_b, out, gan_on)
        self._generator_step(losses["loss"], step)
        if gan_on:
            losses["d_loss"] = self._discriminator_step(batch_a, out[0].detach())
        return {k: v.detach() for k, v in losses.items()}  # no .item() here: a sync every step would stall a GPU

    def _generator_step(self, loss: Tensor, step: int) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_grad)
        self.opt.step()
        self.sched.step()
        self.ema.update(self.model, step)

    def _generator_losses(self, batch_a: Batch, batch_b: Batch, out: tuple[Tensor, ...], gan_on: bool) -> dict:
        image_a, mask_a, image_b, mask_b = (t.float() for t in out)
        weight = self.options.priority
        rec_a = reconstruction_loss(image_a, batch_a.targets, batch_a.masks,
                                    batch_a.priority if weight > 0 else None, priority_weight=weight)
        rec_b = reconstruction_loss(image_b, batch_b.targets, batch_b.masks,
                                    batch_b.priority if weight > 0 else None, priority_weight=weight)
        masks = mask_loss(mask_a, batch_a.masks) + mask_loss(mask_b, batch_b.masks)
        losses = {"loss_a": rec_a, "loss_b": rec_b, "mask": masks}
        total = rec_a + rec_b + masks
        if gan_on:
            fake = image_a * batch_a.masks + batch_a.targets * (1 - batch_a.masks)
            self.disc.requires_grad_(False)  # the generator's step: gradients go through D, not into it
            losses["g_loss"] = gan_g_loss(self.disc(self.layout(fake)), self.options.gan_kind)
            self.disc.requires_grad_(True)
            total = total + self.options.gan_power * losses["g_loss"]
        losses["loss"] = total
        return losses

    def _discriminator_step(self, batch_a: Batch, image_a: Tensor) -> Tensor:
        fake = image_a.float() * batch_a.masks + batch_a.targets * (1 - batch_a.masks)
        with self.autocast():
            loss = gan_d_loss(self.disc(self.layout(batch_a.targets)), self.disc(self.layout(fake)),
                              self.options.gan_kind)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        if self.place.enabled and dist.is_initialized():
            average_gradients(self.disc, self.place.world)
        self.opt_d.step()
        return loss.detach()

    def layout(self, images: Tensor) -> Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.cuda else images

    def autocast(self) -> AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)
