"""The training loop of a pair model: sample, augment on the device, step, keep an EMA, save, preview, log.

One step: a batch of A faces and one of B faces are drawn from the uint8 tensors on the device, augmented
there (`Augmenter`), reconstructed by the model as themselves (A->A, B->B), and scored with masked DSSIM +
L1, the mask loss and, when on, the adversarial loss from a patch discriminator that sees A's faces.
AdamW with warm-up and gradient clipping updates the weights; an exponential moving average of them is
what previews (and later swaps) use. On CUDA the step runs under bf16 autocast in channels_last, and
`--compile` compiles it. Everything that makes the next step (weights, optimizers, schedulers, random
states, step) is in the checkpoint, so `--resume` continues exactly where a run stopped.

Stopping is only ever done between steps: Ctrl-C or SIGTERM asks for a stop, the step under way finishes,
a checkpoint is written and the run ends as interrupted (a second signal stops at once, without saving).
Under torchrun the ranks agree on when to stop (every `SYNC_EVERY` steps), so none waits forever for
the others, and the discriminator's gradients are averaged over the ranks as DDP does for the model's.
"""
from __future__ import annotations

import copy
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from facewright.config import TrainOptions, to_dict
from facewright.errors import DeviceMemoryError
from facewright.files import atomic_path
from facewright.media.image import write_image
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.keys import SigningIdentity, load_identity
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, mark_image
from facewright.train.augment import Augmenter, AugmentOptions, Batch, to_float
from facewright.train.checkpoint import checkpoint_name, save_checkpoint
from facewright.train.data import FacesetTensors
from facewright.train.distributed import Dist, from_env, pick_device, process_group
from facewright.train.losses import gan_d_loss, gan_g_loss, mask_loss, reconstruction_loss
from facewright.train.models import PairModel, create_discriminator, create_model
from facewright.train.preview import loss_plot, preview_grid

PREVIEW_FACES = 6
SYNC_EVERY = 10  # steps between the ranks' agreement on a time budget or a stop signal (torchrun only)
STOP_NONE, STOP_MINUTES, STOP_SIGNAL = 0, 1, 2


@dataclass(frozen=True)
class Pair:
    """What one run learns: person A (the face to put in) and person B (the footage), and their consents."""

    a: FacesetTensors
    b: FacesetTensors
    consent_a: str
    consent_b: str


@dataclass(frozen=True)
class TrainResult:
    folder: Path
    checkpoint: Path | None
    step: int
    first_loss: float | None  # the first logged loss of this run, and the last
    last_loss: float | None
    samples_per_second: float  # A + B faces per second over this run
    seconds: float
    stopped: str  # "steps" | "minutes" | "interrupted"


class PairStep(nn.Module):
    """Both reconstructions in one forward call, so DDP sees one forward per backward."""

    def __init__(self, model: PairModel):
        super().__init__()
        self.model = model

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        image_a, mask_a = self.model(a, "a")
        image_b, mask_b = self.model(b, "b")
        return image_a, mask_a, image_b, mask_b


class StopRequests:
    """While active (in the main thread): SIGINT and SIGTERM ask for a stop; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


class Trainer:
    """Trains `pair` into `folder` (checkpoints/, preview.png, metrics.jsonl, loss.png)."""

    def __init__(self, options: TrainOptions, pair: Pair, folder: Path, *, resume: dict[str, Any] | None = None,
                 progress: ProgressFactory = no_progress, place: Dist | None = None):
        self.options, self.pair, self.folder, self.progress = options, pair, folder, progress
        self.place = place or from_env()
        self.device = pick_device(options.device, self.place)
        self.cuda = self.device.type == "cuda"
        self.resume = resume
        self.step = 0
        self.seconds = 0.0  # training time of the runs before this one
        self.started = time.perf_counter()
        self.saved_step = self.preview_step = -1
        self._signer: SigningIdentity | None = None

    # --- setup ----------------------------------------------------------------------------------------------

    def build(self) -> None:
        """Make the model, EMA, discriminator, optimizers, generators and augmenter (and restore a resume)."""
        opts = self.options
        torch.manual_seed(opts.seed)
        self.model = create_model(opts.model, opts.resolution, **opts.model_options()).to(self.device)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.disc = create_discriminator(opts.resolution).to(self.device) if opts.gan_power > 0 else None
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=opts.lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / max(1, opts.warmup)))
        self.opt_d = (torch.optim.AdamW(self.disc.parameters(), lr=opts.lr, betas=(0.5, 0.999), weight_decay=0.0)
                      if self.disc is not None else None)
        self.sample_gen = torch.Generator().manual_seed(opts.seed * 1000 + self.place.rank)
        self.augment_gen = torch.Generator(self.device).manual_seed(opts.seed * 1000 + 7 + self.place.rank)
        self.augmenter = Augmenter(self._augment_options(), opts.resolution, self.augment_gen)
        step_module = PairStep(self.model)
        if self.place.enabled:
            ids = [self.device.index] if self.cuda else None
            step_module = nn.parallel.DistributedDataParallel(step_module, device_ids=ids)
        self.step_fn: Callable = torch.compile(step_module) if opts.compile else step_module
        if self.resume is not None:
            self._restore(self.resume)
            self.resume = None  # the weights live in the modules now; do not hold a second copy

    def _augment_options(self) -> AugmentOptions:
        o = self.options
        return AugmentOptions(rotate_deg=o.rotate, flip=o.flip, warp=o.warp, color_transfer=o.color_transfer)

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["weights"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        if self.disc is not None and state.get("disc") is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.seconds = int(state["step"]), float(state.get("seconds", 0.0))
        self.saved_step = self.step
        self._set_lr(self.options.lr)
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if self.place.rank == 0:
            self.sample_gen.set_state(rng["sample"])
            if rng.get("augment_device") == str(self.device):
                self.augment_gen.set_state(rng["augment"])
        else:  # only rank 0's streams are saved: the others start fresh ones, not a replay of their first steps
            seed = (self.options.seed * 1000 + self.place.rank) * 1_000_003 + self.step
            self.sample_gen.manual_seed(seed)
            self.augment_gen.manual_seed(seed + 7)

    def _set_lr(self, lr: float) -> None:
        """Make `lr` the peak learning rate from now on (a resumed run may be given a new --lr)."""
        pairs = [(self.opt, self.sched)] + ([(self.opt_d, None)] if self.opt_d is not None else [])
        for optimizer, scheduler in pairs:
            factor = scheduler.lr_lambdas[0](scheduler.last_epoch) if scheduler is not None else 1.0
            for group in optimizer.param_groups:
                group["initial_lr"] = lr
                group["lr"] = lr * factor
            if scheduler is not None:
                scheduler.base_lrs = [lr] * len(optimizer.param_groups)

    # --- the loop -------------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        with process_group(self.place, self.device):
            self.build()
            return self._loop()

    def _loop(self) -> TrainResult:
        opts = self.options
        start = self.started = time.perf_counter()
        losses: list[float] = []
        done_samples, first_step = 0, self.step
        total = opts.steps or None
        with self.progress(total=total, desc="train", unit="step", initial=self.step) as bar, \
                StopRequests() as stops:
            while (stopped := self._stop_reason(start, stops)) is None:
                streams = self._streams()
                try:
                    metrics = self.optimize(*self.next_batches())
                except torch.OutOfMemoryError as exc:
                    self._set_streams(streams)  # the step did not happen: the checkpoint is the state before it
                    raise self._out_of_memory() from exc
                done_samples += 2 * opts.batch
                self.step += 1
                bar.update(1)
                self._after_step(metrics, losses, bar, done_samples / (time.perf_counter() - start))
            checkpoint = self._save()
            if self.place.main and opts.preview_every and self.step > first_step and self.preview_step != self.step:
                self.write_preview()
        if stopped == "interrupted":
            raise KeyboardInterrupt
        seconds = time.perf_counter() - start
        return TrainResult(self.folder, checkpoint, self.step, losses[0] if losses else None,
                           losses[-1] if losses else None, done_samples / max(seconds, 1e-9), seconds, stopped)

    def _stop_reason(self, start: float, stops: StopRequests) -> str | None:
        """Why the run stops before the next step ("steps", "minutes", "interrupted"), or None to go on.

        The step budget is the same on every rank; a time budget and a signal are local, so under torchrun
        the ranks share them (the largest wins) every SYNC_EVERY steps and all stop at the same step.
        """
        if self.options.steps and self.step >= self.options.steps:
            return "steps"
        minutes = self.options.minutes
        code = STOP_SIGNAL if stops.requested else STOP_NONE
        if code == STOP_NONE and minutes > 0 and time.perf_counter() - start >= 60 * minutes:
            code = STOP_MINUTES
        if self.place.enabled and dist.is_initialized():
            if self.step % SYNC_EVERY:
                return None
            shared = torch.tensor([code], device=self.device)
            dist.all_reduce(shared, op=dist.ReduceOp.MAX)
            code = int(shared.item())
        return {STOP_NONE: None, STOP_MINUTES: "minutes", STOP_SIGNAL: "interrupted"}[code]

    def _streams(self) -> tuple[Tensor, Tensor, Tensor]:
        return torch.get_rng_state(), self.sample_gen.get_state(), self.augment_gen.get_state()

    def _set_streams(self, streams: tuple[Tensor, Tensor, Tensor]) -> None:
        torch.set_rng_state(streams[0])
        self.sample_gen.set_state(streams[1])
        self.augment_gen.set_state(streams[2])

    def _out_of_memory(self) -> DeviceMemoryError:
        opts = self.options
        saved = self._save()
        kept = (f"the checkpoint of step {self.step} is kept" if saved is not None
                else "no step had finished, so there is no checkpoint")
        return DeviceMemoryError(
            f"out of {self.device.type.upper()} memory at --batch {opts.batch} and --resolution {opts.resolution}",
            path=saved or self.folder,
            fix=f"try --batch {max(1, opts.batch // 2)}{' (with --resume)' if saved else ''}; {kept}")

    def _batch(self, faces: FacesetTensors, reference: Batch | None = None) -> Batch:
        per_rank = max(1, self.options.batch // self.place.world)
        index = torch.randint(len(faces), (per_rank,), generator=self.sample_gen).to(faces.images.device)
        images, masks, priority = faces.batch(index)
        colors, color_masks = (reference.targets, reference.masks) if reference is not None else (None, None)
        return self.augmenter(images.to(self.device), masks.to(self.device), priority.to(self.device), colors,
                              reference_masks=color_masks)

    def next_batches(self) -> tuple[Batch, Batch]:
        """Augmented batches of A and B for one step."""
        batch_b = self._batch(self.pair.b)
        return self._batch(self.pair.a, batch_b if self.options.color_transfer else None), batch_b

    def optimize(self, batch_a: Batch, batch_b: Batch) -> dict[str, Tensor]:
        """One optimizer step (and one discriminator step when the GAN is on); returns the losses."""
        opts = self.options
        inputs_a, inputs_b = self._layout(batch_a.inputs), self._layout(batch_b.inputs)
        gan_on = self.disc is not None and self.step >= opts.gan_start
        with self._autocast():
            image_a, mask_a, image_b, mask_b = self.step_fn(inputs_a, inputs_b)
            losses = self._generator_losses(batch_a, batch_b, (image_a, mask_a, image_b, mask_b), gan_on)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if opts.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), opts.clip_grad)
        self.opt.step()
        self.sched.step()
        self._update_ema()
        if gan_on:
            losses["d_loss"] = self._discriminator_step(batch_a, image_a.detach())
        return {k: v.detach() for k, v in losses.items()}  # no .item() here: a sync every step would stall a GPU

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
            losses["g_loss"] = gan_g_loss(self.disc(self._layout(fake)), self.options.gan_kind)
            self.disc.requires_grad_(True)
            total = total + self.options.gan_power * losses["g_loss"]
        losses["loss"] = total
        return losses

    def _discriminator_step(self, batch_a: Batch, image_a: Tensor) -> Tensor:
        fake = image_a.float() * batch_a.masks + batch_a.targets * (1 - batch_a.masks)
        with self._autocast():
            loss = gan_d_loss(self.disc(self._layout(batch_a.targets)), self.disc(self._layout(fake)),
                              self.options.gan_kind)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        if self.place.enabled and dist.is_initialized():
            self._average_gradients(self.disc)
        self.opt_d.step()
        return loss.detach()

    def _average_gradients(self, module: nn.Module) -> None:
        """All ranks' mean gradient in every rank (what DDP does for the generator), in one all-reduce."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.place.world
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.options.ema, (1 + self.step) / (10 + self.step))  # warm start: early EMA follows fast
        ema, live = list(self.ema.parameters()), list(self.model.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)
        for ema_buffer, buffer in zip(self.ema.buffers(), self.model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def _layout(self, images: Tensor) -> Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.cuda else images

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)

    # --- outputs (rank 0 only) ------------------------------------------------------------------------------

    def _after_step(self, tensors: dict[str, Tensor], losses: list[float], bar, rate: float) -> None:
        opts = self.options
        if self.step % opts.log_every == 0 or self.step == 1:
            metrics = {k: float(v) for k, v in tensors.items()}
            losses.append(metrics["loss"])
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", samples_s=f"{rate:.1f}")
            if self.place.main:
                self._log({"step": self.step, **{k: round(v, 6) for k, v in metrics.items()},
                           "lr": self.sched.get_last_lr()[0], "samples_per_s": round(rate, 2)})
        if self.place.main and opts.preview_every and self.step % opts.preview_every == 0:
            self.write_preview()
        if self.step % opts.save_every == 0:
            self._save()

    def _log(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def write_preview(self) -> Path:
        a = to_float(self.pair.a.images[:PREVIEW_FACES].to(self.device))
        b = to_float(self.pair.b.images[:PREVIEW_FACES].to(self.device))
        grid = preview_grid(self.ema, self._resize(a), self._resize(b))
        self.preview_step = self.step
        # The A->B and B->A rows are swapped faces: like every output, the preview is labelled and signed.
        plan = MarkPlan(Label("ai-generated"), (self.pair.consent_a, self.pair.consent_b), model=self.folder.name)
        signer = self._signer = self._signer or load_identity()
        path = mark_image(grid, self.folder / "preview.png", plan, signer)
        if self.options.timelapse:
            mark_image(grid, self.folder / "previews" / f"step_{self.step:07d}.png", plan, signer)
        write_image(loss_plot(*read_losses(self.folder / "metrics.jsonl")), self.folder / "loss.png")
        return path

    def _resize(self, images: Tensor) -> Tensor:
        size = self.options.resolution
        if images.shape[-1] == size:
            return images
        return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True)

    def _save(self) -> Path | None:
        """Checkpoint the current step (rank 0; once per step: a final save right after a periodic one is free)."""
        folder = self.folder / "checkpoints"
        if not self.place.main or self.step == 0:
            return None
        if self.saved_step == self.step:
            return folder / checkpoint_name(self.step)
        path = save_checkpoint(self.state(), folder, self.step, self.options.keep)
        self.saved_step = self.step
        return path

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see checkpoint.py)."""
        pair = self.pair
        return {
            "model": {"name": self.model.name, "resolution": self.model.resolution, "options": self.model.options},
            "weights": self.model.state_dict(), "ema": self.ema.state_dict(),
            "disc": self.disc.state_dict() if self.disc is not None else None,
            "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "step": self.step, "seconds": self.seconds + time.perf_counter() - self.started,
            "rng": {"torch": torch.get_rng_state(), "sample": self.sample_gen.get_state(),
                    "augment": self.augment_gen.get_state(), "augment_device": str(self.device)},
            "config": to_dict(self.options),
            "facesets": {side: {"name": f.name, "sha256": f.sha256, "faces": len(f), "face_type": f.face_type}
                         for side, f in (("a", pair.a), ("b", pair.b))},
            "consent": {"a": pair.consent_a, "b": pair.consent_b},
        }


def read_losses(path: Path) -> tuple[list[int], list[float]]:
    """(steps, total losses) logged in a metrics.jsonl."""
    if not path.is_file():
        return [], []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["step"] for r in records], [r["loss"] for r in records]


def write_json(path: Path, value: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
