"""The training loop of a pair model: draw a batch, step, log, save, preview; stop only between steps.

The loop composes the pieces of a run: `BatchSource` draws and augments the faces of each step (batches.py),
`PairOptimizer` makes the models and takes the step (optimize.py, with the EMA of ema.py), checkpoint.py
turns the run into a checkpoint's dict and back (weights, optimizers, schedulers, random states, step, so
`--resume` continues exactly where a run stopped) and `PreviewWriter` writes signed previews (preview.py).

Stopping is only ever done between steps: Ctrl-C or SIGTERM asks for a stop, the step under way finishes,
a checkpoint is written and the run ends as interrupted (a second signal stops at once, without saving).
A step that runs out of device memory is undone (its random draws too), so the checkpoint written then is
the state before it. Under torchrun the ranks agree on when to stop (every `SYNC_EVERY` steps), so none
waits forever for the others.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

from facewright.config import TrainOptions
from facewright.errors import DeviceMemoryError
from facewright.progress import ProgressFactory, no_progress
from facewright.train.augment import Batch
from facewright.train.batches import BatchSource, Pair
from facewright.train.checkpoint import checkpoint_name, restore_run, run_state, save_checkpoint
from facewright.train.distributed import Dist, from_env, pick_device, process_group
from facewright.train.optimize import PairOptimizer

if TYPE_CHECKING:  # signing and previews pull in C2PA and video: imported only when previews are on
    from facewright.provenance.keys import SigningIdentity

SYNC_EVERY = 10  # steps between the ranks' agreement on a time budget or a stop signal (torchrun only)
STOP_NONE, STOP_MINUTES, STOP_SIGNAL = 0, 1, 2


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
    """Trains `pair` into `folder` (checkpoints/, preview.png, metrics.jsonl, loss.png).

    `signer` signs the previews; rank 0 needs one when previews are on (the other ranks write none).
    """

    def __init__(self, options: TrainOptions, pair: Pair, folder: Path, *, resume: dict[str, Any] | None = None,
                 progress: ProgressFactory = no_progress, place: Dist | None = None, signer: SigningIdentity | None,
                 checkpoints: bool = True):
        self.options, self.pair, self.folder, self.progress = options, pair, folder, progress
        self.checkpoints = checkpoints  # False: no checkpoint at all (the GPU bench keeps only its figures)
        self.place = place or from_env()
        self.device = pick_device(options.device, self.place)
        self.previews = None
        if self.place.main and options.preview_every:
            from facewright.train.preview import PreviewWriter  # here: a run without previews stays lean

            self.previews = PreviewWriter(folder, pair, options.resolution, self.device, timelapse=options.timelapse,
                                          signer=signer)
        self.resume = resume
        self.step = 0
        self.seconds = 0.0  # training time of the runs before this one
        self.started = time.perf_counter()
        self.saved_step = self.preview_step = -1

    def build(self) -> None:
        """Make the models and optimizers, then the batch streams (and restore a resume)."""
        self.optimizer = PairOptimizer(self.options, self.device, self.place)
        self.batches = BatchSource(self.pair, self.options, self.device, self.place)
        if self.resume is not None:
            self.step, self.seconds = restore_run(self.resume, self.optimizer, self.batches, self.options.lr)
            self.saved_step = self.step
            self.resume = None  # the weights live in the modules now; do not hold a second copy

    def run(self) -> TrainResult:
        with process_group(self.place, self.device):
            self.build()
            return self._loop()

    def next_batches(self) -> tuple[Batch, Batch]:
        """Augmented batches of A and B for one step."""
        return self.batches.next()

    def optimize(self, batch_a: Batch, batch_b: Batch) -> dict[str, Tensor]:
        """One optimizer step (and one discriminator step when the GAN is on); returns the losses."""
        return self.optimizer.optimize(batch_a, batch_b, self.step)

    # --- the loop -------------------------------------------------------------------------------------------

    def _loop(self) -> TrainResult:
        opts = self.options
        start = self.started = time.perf_counter()
        losses: list[float] = []
        done_samples, first_step = 0, self.step
        with self.progress(total=opts.steps or None, desc="train", unit="step", initial=self.step) as bar, \
                StopRequests() as stops:
            while (stopped := self._stop_reason(start, stops)) is None:
                snapshot = self.batches.snapshot()
                self.optimizer.progress = self._progress(start)
                try:
                    metrics = self.optimize(*self.next_batches())
                except torch.OutOfMemoryError as exc:
                    self.batches.rewind(snapshot)  # the step did not happen: the checkpoint is the state before it
                    raise self._out_of_memory() from exc
                done_samples += 2 * opts.batch
                self.step += 1
                bar.update(1)
                self._after_step(metrics, losses, bar, done_samples / (time.perf_counter() - start))
            checkpoint = self._save()
            if self.previews is not None and self.step > first_step and self.preview_step != self.step:
                self.write_preview()
        if stopped == "interrupted":
            raise KeyboardInterrupt
        seconds = time.perf_counter() - start
        return TrainResult(self.folder, checkpoint, self.step, losses[0] if losses else None,
                           losses[-1] if losses else None, done_samples / max(seconds, 1e-9), seconds, stopped)

    def _progress(self, start: float) -> float:
        """The share of the budget done: of --steps (all runs together), or of this run's --minutes, whichever
        is further. Under torchrun only steps count: the ranks' clocks differ, their learning rates may not."""
        opts = self.options
        done = self.step / opts.steps if opts.steps else 0.0
        if opts.minutes > 0 and not self.place.enabled:
            done = max(done, (time.perf_counter() - start) / (60 * opts.minutes))
        return min(1.0, done)

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

    def _out_of_memory(self) -> DeviceMemoryError:
        opts = self.options
        saved = self._save()
        kept = (f"the checkpoint of step {self.step} is kept" if saved is not None
                else "no step had finished, so there is no checkpoint")
        return DeviceMemoryError(
            f"out of {self.device.type.upper()} memory at --batch {opts.batch} and --resolution {opts.resolution}",
            path=saved or self.folder,
            fix=f"try --batch {max(1, opts.batch // 2)}{' (with --resume)' if saved else ''}; {kept}")

    # --- outputs (rank 0 only) ------------------------------------------------------------------------------

    def _after_step(self, tensors: dict[str, Tensor], losses: list[float], bar, rate: float) -> None:
        opts = self.options
        if self.step % opts.log_every == 0 or self.step == 1:
            metrics = {k: float(v) for k, v in tensors.items()}
            losses.append(metrics["loss"])
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", samples_s=f"{rate:.1f}")
            if self.place.main:
                self._log({"step": self.step, **{k: round(v, 6) for k, v in metrics.items()},
                           "lr": self.optimizer.lr, "samples_per_s": round(rate, 2)})
        if self.previews is not None and self.step % opts.preview_every == 0:
            self.write_preview()
        if self.step % opts.save_every == 0:
            self._save()

    def _log(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def write_preview(self) -> Path:
        """The EMA model's preview of this step (rank 0, previews on)."""
        self.preview_step = self.step
        return self.previews.write(self.optimizer.ema.module, self.step)

    def _save(self) -> Path | None:
        """Checkpoint the current step (rank 0; once per step: a final save right after a periodic one is free)."""
        folder = self.folder / "checkpoints"
        if not self.place.main or self.step == 0 or not self.checkpoints:
            return None
        if self.saved_step == self.step:
            return folder / checkpoint_name(self.step)
        path = save_checkpoint(self.state(), folder, self.step, self.options.keep)
        self.saved_step = self.step
        return path

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see checkpoint.py)."""
        seconds = self.seconds + time.perf_counter() - self.started
        return run_state(self.optimizer, self.batches, self.options, self.step, seconds)
