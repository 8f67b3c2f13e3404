"""The layers pair models are built from: downscale, upscale and residual blocks, and pixel normalization.

Only standard layers (Conv2d, LeakyReLU, PixelShuffle), so every block runs in channels_last and under
bf16 autocast without special cases. Shapes are N x C x H x W throughout.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

ENCODER_SLOPE = 0.1  # LeakyReLU slopes as in the SAEHD family: keeps gradients alive for negative features
RESIDUAL_SLOPE = 0.2


class Downscale(nn.Sequential):
    """5 x 5 conv, stride 2, then LeakyReLU: N x C_in x H x W -> N x C_out x H/2 x W/2.

    A wide 5 x 5 kernel (rather than 3 x 3) lets each halving see a whole eye or mouth corner at 64-128 px.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 5, stride=2, padding=2),
                         nn.LeakyReLU(ENCODER_SLOPE))


class Upscale(nn.Sequential):
    """3 x 3 conv to 4 x C_out channels, LeakyReLU, PixelShuffle(2): N x C_in x H x W -> N x C_out x 2H x 2W.

    Sub-pixel convolution instead of a transposed conv: every output pixel gets the same number of kernel
    taps, so there are no checkerboard artifacts in the rendered face.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels * 4, 3, padding=1),
                         nn.LeakyReLU(ENCODER_SLOPE),
                         nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
    """Two 3 x 3 convs with a skip: N x C x H x W -> N x C x H x W.

    Decoders get one after each upscale: detail (pores, hair strands) is added on top of the upscaled map
    instead of having to be carried through it.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(RESIDUAL_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


def pixel_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Scale each pixel's feature vector to unit RMS over channels: N x C x H x W -> same shape and dtype.

    Computed in float32: the mean of squares underflows or saturates in bf16 for very small or large features.
    """
    scale = torch.rsqrt(x.float().pow(2).mean(dim=1, keepdim=True) + eps)
    return x * scale.to(x.dtype)


class PixelNorm(nn.Module):
    """`pixel_norm` as a layer."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(x, self.eps)

