"""Pair-model architectures, as a registry: `create_model("liae-ud", resolution=128, ae_dims=256)`.

- `df`, `df-u`, `df-d`, `df-ud`: shared encoder and bottleneck, one decoder per person.
- `liae`, `liae-u`, `liae-d`, `liae-ud`: shared encoder and decoder, a shared and a B-only bottleneck.
- `test-ae`: a tiny liae-ud for tests and smoke runs (a training step at 64 px in milliseconds on a CPU).
"u": pixel-normalized encoder output; "d": decoder at half size doubled by a last sub-pixel conv.
Architecture notes are in `autoencoder`. Options (all models): ae_dims, e_dims, d_dims, d_mask_dims.
Resolution R: 64-512 pixels, a multiple of 16 (the encoder halves four times).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from facewright.errors import OptionError
from facewright.train.models.autoencoder import DFModel, LIAEModel, PairModel, Widths, check_resolution
from facewright.train.models.discriminator import create_discriminator, discriminator_kinds

__all__ = ["ModelInfo", "PairModel", "create_discriminator", "create_model", "describe", "discriminator_kinds",
           "model_names", "register_model"]

# DeepFaceLab's usual SAEHD widths: 54-195 M parameters at 128-256 px, most of them in the cheap dense
# bottleneck; 15-265 GFLOPs per sample forward (`facewright models list` prints the figures).
DEFAULT_WIDTHS = Widths(ae_dims=256, e_dims=64, d_dims=64, d_mask_dims=22)
TEST_WIDTHS = Widths(ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)
MAX_WIDTH = {"ae_dims": 2048, "e_dims": 512, "d_dims": 512, "d_mask_dims": 512}  # past these nothing fits a GPU

ModelFactory = Callable[..., PairModel]
_REGISTRY: dict[str, ModelFactory] = {}


@dataclass(frozen=True)
class ModelInfo:
    """Size of a model: `parameters` (count) and GFLOPs of one A sample's forward through the swap path."""

    name: str
    resolution: int
    parameters: int
    gflops_per_sample: float
    options: dict[str, Any]


def register_model(fn: ModelFactory) -> ModelFactory:
    """Register a factory `fn(resolution, **options) -> PairModel` under fn.__name__ with "_" -> "-"."""
    _REGISTRY[fn.__name__.replace("_", "-")] = fn
    return fn


def model_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_model(name: str, resolution: int = 128, **options: Any) -> PairModel:
    """The registered model `name` for R x R faces; raises OptionError for a bad name, resolution or width."""
    if name not in _REGISTRY:
        raise OptionError(f"unknown model {name!r}", fix=f"use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name](resolution, **options)


def describe(model: PairModel) -> ModelInfo:
    """Parameter count and forward GFLOPs per sample (as `forward(x, "a")`, the path a swap takes)."""
    parameters = sum(p.numel() for p in model.parameters())
    return ModelInfo(model.name, model.resolution, parameters, _gflops(model), dict(model.options))


def _gflops(model: PairModel) -> float:
    weight = next(model.parameters())
    x = torch.rand(1, 3, model.resolution, model.resolution, device=weight.device, dtype=weight.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, "a")
    return counter.get_total_flops() / 1e9


def resolve_widths(options: dict[str, Any], defaults: Widths) -> Widths:
    """`defaults` with `options` laid over them; OptionError for an unknown name or a bad value."""
    widths = defaults.as_options()
    for key, value in options.items():
        if key not in widths:
            raise OptionError(f"unknown model option {key!r}", fix=f"use {', '.join(widths)}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH[key]:
            raise OptionError(f"{key} must be a whole number from 1 to {MAX_WIDTH[key]}, got {value!r}",
                              fix=f"the default is {widths[key]}")
        widths[key] = value
    return Widths(**widths)


def _build(cls: type[PairModel], name: str, resolution: int, options: dict[str, Any], *, normalize: bool,
           double: bool, defaults: Widths = DEFAULT_WIDTHS) -> PairModel:
    return cls(name, check_resolution(resolution), resolve_widths(options, defaults), normalize, double)


@register_model
def df(resolution: int = 128, **options: Any) -> PairModel:
    return _build(DFModel, "df", resolution, options, normalize=False, double=False)


@register_model
def df_u(resolution: int = 128, **options: Any) -> PairModel:
    return _build(DFModel, "df-u", resolution, options, normalize=True, double=False)


@register_model
def df_d(resolution: int = 128, **options: Any) -> PairModel:
    return _build(DFModel, "df-d", resolution, options, normalize=False, double=True)


@register_model
def df_ud(resolution: int = 128, **options: Any) -> PairModel:
    return _build(DFModel, "df-ud", resolution, options, normalize=True, double=True)


@register_model
def liae(resolution: int = 128, **options: Any) -> PairModel:
    return _build(LIAEModel, "liae", resolution, options, normalize=False, double=False)


@register_model
def liae_u(resolution: int = 128, **options: Any) -> PairModel:
    return _build(LIAEModel, "liae-u", resolution, options, normalize=True, double=False)


@register_model
def liae_d(resolution: int = 128, **options: Any) -> PairModel:
    return _build(LIAEModel, "liae-d", resolution, options, normalize=False, double=True)


@register_model
def liae_ud(resolution: int = 128, **options: Any) -> PairModel:
    return _build(LIAEModel, "liae-ud", resolution, options, normalize=True, double=True)


@register_model
def test_ae(resolution: int = 64, **options: Any) -> PairModel:
    return _build(LIAEModel, "test-ae", resolution, options, normalize=True, double=True, defaults=TEST_WIDTHS)
