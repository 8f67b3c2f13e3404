"""The exponential moving average of a model's weights: what previews and swaps use.

The live weights jump with every batch; their average over the last ~1/(1 - decay) steps renders steadier
faces. Buffers (normalisation statistics) are copied, not averaged: they are already running statistics.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """A frozen copy of `model` (`module`) that `update` moves toward the live weights after each step."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move toward `model`'s weights after optimizer step `step` (0 for the run's first)."""
        decay = min(self.decay, (1 + step) / (10 + step))  # warm start: early EMA follows fast
        ema, live = list(self.module.parameters()), list(model.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
