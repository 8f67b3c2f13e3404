"""Named option sets for `facewright train --preset NAME`; flags given on the command line win over them.

Figures behind each are in the README's benchmark section.
"""
from __future__ import annotations

from typing import Any

from facewright.errors import OptionError

PRESETS: dict[str, dict[str, Any]] = {
    # `make demo` on 2 CPU cores in a few minutes: small widths at 64 px, enough to see both faces come back.
    # Measured on two seeds each with `bench quality` (README, Benchmarks): no EMA (over 600 steps the average
    # lags the live weights: the swap was recognized less and followed the pose less), half the random warp
    # (the swap came out nearer A; a tenth of it let B's identity through), no random rotation (the crops are
    # aligned already; without it SFace recognized the swap as A in 85% | 29% of frames instead of 6% | 0%),
    # 0.6 of A's faces drawn near B's head poses (the pose error 2.60 | 3.56 -> 2.46 | 2.92 degrees and the
    # swap nearer A, for expression r -0.07 and +0.6 delta E of seam; at 1399 steps it no longer paid).
    "demo": {"model": "liae-ud", "resolution": 64, "batch": 8, "ae_dims": 64, "e_dims": 16, "d_dims": 16,
             "d_mask_dims": 8, "steps": 600, "lr": 5e-4, "warmup": 50, "ema": 0.0, "warp": 0.025,
             "rotate": 0.0, "pose_match": 0.6, "preview_every": 100, "save_every": 200},
    # The best 10 minutes of 2 CPU cores give on the sample pair (chosen by `bench quality --preset quick`
    # rows against other resolutions): the demo's model trained three times as long.
    "quick": {"model": "liae-ud", "resolution": 64, "batch": 8, "ae_dims": 64, "e_dims": 16, "d_dims": 16,
              "d_mask_dims": 8, "minutes": 10.0, "lr": 5e-4, "warmup": 50, "ema": 0.0, "warp": 0.025,
              "rotate": 0.0, "preview_every": 250, "save_every": 500},
    # a real model on one GPU: DeepFaceLab's usual SAEHD size, with the adversarial loss after warm-up
    "gpu-256": {"model": "liae-ud", "resolution": 256, "batch": 32, "ae_dims": 256, "e_dims": 64, "d_dims": 64,
                "d_mask_dims": 22, "gan_power": 0.1, "gan_start": 20000, "preview_every": 1000,
                "save_every": 2000},
}


def preset_options(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}", fix=f"use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])
