"""Occlusion segmenters: which pixels of an aligned face crop are the face itself, and which are in front of it.

A small U-Net (like DeepFaceLab's XSeg): an encoder halving the crop five times, a decoder doubling it back
with the encoder's features of the same size added in (skip connections keep thin things thin: a strand of
hair, the edge of a finger). One output channel of logits; `sigmoid` of it is the face mask.

- `xseg`: widths 16-32-64-96-128 from R/2 down to R/32, ~0.5 M parameters; 128 px trains on a CPU in minutes.
- `xseg-tiny`: widths 4-8-16-16-16, for tests (a step in milliseconds).
Resolution R: 64-512 pixels, a multiple of 16.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from facewright.errors import OptionError
from facewright.train.models.autoencoder import check_resolution

SLOPE = 0.2
_WIDTHS: dict[str, tuple[int, ...]] = {"xseg": (16, 32, 64, 96, 128), "xseg-tiny": (4, 8, 16, 16, 16)}


def _conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.LeakyReLU(SLOPE))


class Segmenter(nn.Module):
    """N x 3 x R x R RGB in [0, 1] -> N x 1 x R x R logits (face > 0).

    The U-Net runs from R/2 down (a stride-2 first layer): full-resolution convolutions would cost most of
    the compute. A thin full-resolution branch of the input is added back before the last layer, so edges
    are placed at the input's pixels, not at R/2's.
    """

    def __init__(self, name: str, resolution: int, widths: tuple[int, ...]):
        super().__init__()
        self.name, self.resolution, self.widths = name, resolution, widths
        fine = max(4, widths[0] // 2)
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(SLOPE),
                                  _conv(widths[0], widths[0]))
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _conv(a, b), _conv(b, b))
                                  for a, b in zip(widths, widths[1:], strict=False))
        self.up = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                              _conv(b, a))
                                for a, b in zip(widths, widths[1:], strict=False))
        self.merge = nn.ModuleList(_conv(a, a) for a in widths[:-1])
        self.fine = nn.Sequential(nn.Conv2d(3, fine, 3, padding=1), nn.LeakyReLU(SLOPE))
        self.last = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                  nn.Conv2d(widths[0], fine, 3, padding=1))
        self.head = nn.Sequential(nn.LeakyReLU(SLOPE), nn.Conv2d(fine, fine, 3, padding=1), nn.LeakyReLU(SLOPE),
                                  nn.Conv2d(fine, 1, 1))

    @property
    def options(self) -> dict:
        return {}

    def forward(self, x: Tensor) -> Tensor:
        x = x * 2 - 1
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = skips.pop()
        for up, merge in zip(reversed(self.up), reversed(self.merge), strict=True):
            y = merge(up(y) + skips.pop())
        return self.head(self.last(y) + self.fine(x))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """N x 1 x R x R face probabilities for N x 3 x R x R RGB crops in [0, 1]."""
        return torch.sigmoid(self(x).float())


def create_segmenter(name: str = "xseg", resolution: int = 128) -> Segmenter:
    """The registered segmenter `name` for R x R crops; OptionError for a bad name or resolution."""
    if name not in _WIDTHS:
        raise OptionError(f"unknown mask model architecture {name!r}", fix=f"use one of {', '.join(_WIDTHS)}")
    check_resolution(resolution)
    return Segmenter(name, resolution, _WIDTHS[name])


