"""Pair models: one network that renders any face as person A or as person B.

Two architectures of the SAEHD family, both trained only on reconstruction (A -> A, B -> B):

- DF: one shared encoder and dense bottleneck ("inter"), one decoder per person. The shared code must
  describe pose, expression and light in a way both decoders read, so B's frame decoded by A's decoder is
  A's face in B's pose. Strong identity transfer; needs the two faces to be alike in shape.
- LIAE: one shared encoder and decoder, two bottlenecks. `inter_ab` sees both people, `inter_b` only B.
  A is decoded from [inter_ab, inter_ab], B from [inter_b, inter_ab]; so `inter_b` learns what is B-only
  and `inter_ab` what is shared (pose, light). Swapping renders B's frame from [inter_ab, inter_ab], which
  keeps the frame's pose and light better than DF and tolerates different face shapes.

Variant letters: "u" pixel-normalizes the encoder output, which keeps the bottleneck's input on one scale
and makes training steadier; "d" runs the decoder at half the output size and doubles it with a last
sub-pixel conv: about the compute of an R/2 decoder for an R-pixel output.

The bottleneck is two Linear layers with no activation between them: a low-rank (ae_dims) map from the
whole encoded face to a small feature map. Every output pixel depends on the whole face, which a
conv-only network of this depth would not give, and the rank limit forces the code to generalize.
Upscaling everywhere is conv -> PixelShuffle (see blocks.Upscale). Outputs go through a sigmoid: images
and masks in [0, 1] without clamping, so gradients never vanish at the range ends.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from facewright.errors import OptionError
from facewright.train.models.blocks import Downscale, PixelNorm, ResidualBlock, Upscale

IDENTITIES = ("a", "b")
MIN_RESOLUTION, MAX_RESOLUTION = 64, 512
RESOLUTION_STEP = 16  # the encoder halves four times: the bottleneck map must come out whole
ENCODER_STEPS = 4  # the encoder halves 4 times: the bottleneck sees an R/16 map
DECODER_STEPS = 3


def check_resolution(resolution: object) -> int:
    """`resolution` if it is a usable face size, else OptionError."""
    ok = isinstance(resolution, int) and not isinstance(resolution, bool) \
        and MIN_RESOLUTION <= resolution <= MAX_RESOLUTION and resolution % RESOLUTION_STEP == 0
    if not ok:
        raise OptionError(f"resolution must be {MIN_RESOLUTION}-{MAX_RESOLUTION} and a multiple of "
                          f"{RESOLUTION_STEP}, got {resolution!r}", fix="use 64, 128, 192, 256, 384 or 512")
    return resolution


@dataclass(frozen=True)
class Widths:
    """Channel widths. ae_dims: bottleneck; e_dims, d_dims, d_mask_dims: first encoder, image and mask
    decoder widths (each stage multiplies them by 1, 2, 4, 8)."""

    ae_dims: int
    e_dims: int
    d_dims: int
    d_mask_dims: int

    def as_options(self) -> dict[str, int]:
        return asdict(self)


class Encoder(nn.Module):
    """N x 3 x R x R in [0, 1] -> N x 8*e_dims x R/16 x R/16."""

    def __init__(self, e_dims: int, normalize: bool):
        super().__init__()
        widths = [3] + [e_dims * 2**i for i in range(ENCODER_STEPS)]
        self.down = nn.Sequential(*(Downscale(c_in, c_out) for c_in, c_out in pairwise(widths)))
        self.norm = PixelNorm() if normalize else nn.Identity()
        self.out_channels = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.down(x * 2 - 1))  # centered input: the first conv's bias need not learn -0.5


class Inter(nn.Module):
    """Dense bottleneck: N x C x S x S -> N x out_channels x out_size x out_size.

    Linear to ae_dims, Linear to a map of ceil(out_size/2) squared, one upscale. When out_size is odd the
    upscaled map is one pixel too big and its last row and column are cropped (R = 80, 112, ... in "-d").
    """

    def __init__(self, in_channels: int, in_size: int, ae_dims: int, out_channels: int, out_size: int):
        super().__init__()
        self.low = math.ceil(out_size / 2)
        self.out_channels, self.out_size = out_channels, out_size
        self.squeeze = nn.Linear(in_channels * in_size * in_size, ae_dims)
        self.expand = nn.Linear(ae_dims, out_channels * self.low * self.low)
        self.up = Upscale(out_channels, out_channels)

    def forward(self, z: Tensor) -> Tensor:
        code = self.expand(self.squeeze(z.flatten(1)))
        grid = code.view(-1, self.out_channels, self.low, self.low)
        return self.up(grid)[..., :self.out_size, :self.out_size]


class Decoder(nn.Module):
    """N x C x S x S -> (image N x 3 x 8S x 8S, mask N x 1 x 8S x 8S), both in [0, 1]; 16S with `double`."""

    def __init__(self, in_channels: int, d_dims: int, d_mask_dims: int, double: bool):
        super().__init__()
        self.image = _upscale_stack(in_channels, d_dims, residual=True)
        self.mask = _upscale_stack(in_channels, d_mask_dims, residual=False)
        self.image_head = _head(2 * d_dims, 3, double)
        self.mask_head = _head(2 * d_mask_dims, 1, double)

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor]:
        image = torch.sigmoid(self.image_head(self.image(code)))
        mask = torch.sigmoid(self.mask_head(self.mask(code)))
        return image, mask


def _upscale_stack(in_channels: int, dims: int, residual: bool) -> nn.Sequential:
    """Three upscales to 8, 4, 2 x dims channels, each followed by a residual block when `residual`."""
    widths = [in_channels] + [dims * 2 ** (DECODER_STEPS - i) for i in range(DECODER_STEPS)]
    layers: list[nn.Module] = []
    for c_in, c_out in pairwise(widths):
        layers.append(Upscale(c_in, c_out))
        if residual:
            layers.append(ResidualBlock(c_out))
    return nn.Sequential(*layers)


def _head(in_channels: int, out_channels: int, double: bool) -> nn.Module:
    """Logits from features; with `double`, a 3 x 3 conv and PixelShuffle make them at twice the size."""
    if double:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels * 4, 3, padding=1), nn.PixelShuffle(2))
    return nn.Conv2d(in_channels, out_channels, 1)


class PairModel(nn.Module, ABC):
    """Renders a face as person "a" or "b". `create_model(name, resolution, **options)` rebuilds it.

    Attributes: name (registry name), resolution (R, pixels), options (the widths, JSON-serialisable).
    """

    def __init__(self, name: str, resolution: int, widths: Widths, normalize: bool, double: bool):
        super().__init__()
        self.name, self.resolution, self.options = name, resolution, widths.as_options()
        self.encoder = Encoder(widths.e_dims, normalize)
        self.code_size = resolution // (16 if double else 8)  # the side of the map the decoder starts from

    def forward(self, x: Tensor, identity: str) -> tuple[Tensor, Tensor]:
        """x: N x 3 x R x R RGB in [0, 1]. Returns x rendered as `identity`: image N x 3 x R x R and mask
        N x 1 x R x R, both in [0, 1]. Swapping B's footage to A is forward(b_face, "a")."""
        if identity not in IDENTITIES:
            raise ValueError(f"identity must be 'a' or 'b', got {identity!r}")
        return self.decoder_for(identity)(self.code(self.encoder(x), identity))

    @abstractmethod
    def code(self, z: Tensor, identity: str) -> Tensor:
        """The decoder input for `identity` from the encoder output z."""

    @abstractmethod
    def decoder_for(self, identity: str) -> Decoder:
        """The decoder that renders `identity`."""


class DFModel(PairModel):
    """Shared encoder and inter, a decoder per person."""

    def __init__(self, name: str, resolution: int, widths: Widths, normalize: bool = False, double: bool = False):
        super().__init__(name, resolution, widths, normalize, double)
        e = self.encoder.out_channels
        self.inter = Inter(e, resolution // 16, widths.ae_dims, widths.ae_dims, self.code_size)
        self.decoder_a = Decoder(widths.ae_dims, widths.d_dims, widths.d_mask_dims, double)
        self.decoder_b = Decoder(widths.ae_dims, widths.d_dims, widths.d_mask_dims, double)

    def code(self, z: Tensor, identity: str) -> Tensor:
        return self.inter(z)

    def decoder_for(self, identity: str) -> Decoder:
        return self.decoder_a if identity == "a" else self.decoder_b


class LIAEModel(PairModel):
    """Shared encoder and decoder; inter_ab for both people, inter_b for B only."""

    def __init__(self, name: str, resolution: int, widths: Widths, normalize: bool = False, double: bool = False):
        super().__init__(name, resolution, widths, normalize, double)
        # each inter gives 2 x ae_dims channels, so the shared half alone can carry a whole face's pose and light
        e, code_channels = self.encoder.out_channels, widths.ae_dims * 2
        self.inter_ab = Inter(e, resolution // 16, widths.ae_dims, code_channels, self.code_size)
        self.inter_b = Inter(e, resolution // 16, widths.ae_dims, code_channels, self.code_size)
        self.decoder = Decoder(code_channels * 2, widths.d_dims, widths.d_mask_dims, double)

    def code(self, z: Tensor, identity: str) -> Tensor:
        shared = self.inter_ab(z)
        own = shared if identity == "a" else self.inter_b(z)
        return torch.cat([own, shared], dim=1)

    def decoder_for(self, identity: str) -> Decoder:
        return self.decoder
