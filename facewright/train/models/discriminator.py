"""Discriminators for the adversarial loss: `create_discriminator(resolution, dims=64, kind="patch")`.

A PatchGAN: strided convs that end in a grid of logits, each judging one patch of the face. Judging
patches rather than the whole face asks for local realism (skin texture, sharp eyelashes), which is what
the reconstruction losses blur; the global look is already held by them. The number of halvings grows
with the resolution, so the grid stays 11-22 cells wide and each logit sees a similar share of the
face at any size. No batch norm: its batch statistics would let real and fake batches leak into each
other; spectral normalization bounds each layer's gain instead, which keeps the discriminator from
overpowering the generator early.
"""
from __future__ import annotations

import math
from itertools import pairwise

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from facewright.errors import OptionError
from facewright.train.models.autoencoder import check_resolution

SLOPE = 0.2
MAX_DIMS = 512
PATCH_GRID = 16  # aimed logits per side at power-of-two resolutions
KINDS = ("patch",)


def discriminator_kinds() -> tuple[str, ...]:
    return KINDS


def patch_steps(resolution: int) -> int:
    """How many times the patch discriminator halves an R x R input (at least twice, for 64 px)."""
    return max(2, round(math.log2(resolution / PATCH_GRID)))


class PatchDiscriminator(nn.Module):
    """N x 3 x R x R RGB in [0, 1] -> N x 1 x h x h logits, h = R // 2**patch_steps(R) (16 at R = 2^n)."""

    def __init__(self, resolution: int, dims: int = 64, spectral: bool = True):
        super().__init__()
        steps = patch_steps(resolution)
        widths = [3] + [dims * min(2**i, 8) for i in range(steps)]
        layers: list[nn.Module] = []
        for c_in, c_out in pairwise(widths):
            layers += [_conv(c_in, c_out, 4, 2, spectral), nn.LeakyReLU(SLOPE)]
        top = widths[-1]
        layers += [_conv(top, top, 3, 1, spectral), nn.LeakyReLU(SLOPE), _conv(top, 1, 3, 1, spectral)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


def _conv(c_in: int, c_out: int, kernel: int, stride: int, spectral: bool) -> nn.Module:
    """A conv whose output is exactly input / stride for even inputs (kernel 4, pad 1; kernel 3, pad 1)."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1)
    return spectral_norm(conv) if spectral else conv


def create_discriminator(resolution: int, dims: int = 64, kind: str = "patch", spectral: bool = True) -> nn.Module:
    """A discriminator for R x R faces in [0, 1]; `dims` is the first layer's width (doubling up to 8x)."""
    check_resolution(resolution)
    if kind not in KINDS:
        raise OptionError(f"unknown discriminator kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMS:
        raise OptionError(f"discriminator dims must be a whole number from 1 to {MAX_DIMS}, got {dims!r}",
                          fix="the default is 64")
    return PatchDiscriminator(resolution, dims, spectral)
