"""Training losses of a pair model: masked DSSIM + L1 reconstruction, the mask loss and adversarial losses.

Images are N x C x H x W float in [0, 1]; masks are N x 1 x H x W weights in [0, 1]. Every loss returns a
scalar float32 tensor. The filtering runs in float32 with autocast off: SSIM's variances are differences of
nearly equal means, which bf16 would turn into noise.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_C1 = 0.01**2  # SSIM's stabilizers for a dynamic range of 1
SSIM_C2 = 0.03**2
_EPS = 1e-8


def _check_pair(a: Tensor, b: Tensor, name: str) -> None:
    if a.ndim != 4 or a.shape != b.shape:
        raise ValueError(f"{name}: expected two N x C x H x W tensors of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")


def _check_mask(mask: Tensor | None, like: Tensor, name: str) -> None:
    expected = (like.shape[0], 1, *like.shape[2:])
    if mask is not None and tuple(mask.shape) != expected:
        raise ValueError(f"{name}: the mask must be {expected} (N x 1 x H x W), got {tuple(mask.shape)}")


def _no_autocast(x: Tensor):
    return torch.autocast(device_type=x.device.type, enabled=False)


def gaussian_window(size: int, sigma: float, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """(size,) normalized 1-D Gaussian taps centred on the middle tap; `size` must be odd."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the window size must be odd and positive, got {size}")
    x = torch.arange(size, device=device, dtype=torch.float64) - size // 2
    taps = torch.exp(-(x**2) / (2 * sigma**2))
    return (taps / taps.sum()).to(dtype)


def gaussian_blur(images: Tensor, size: int, sigma: float) -> Tensor:
    """Separable Gaussian blur of N x C x H x W, same size out, reflect padding (d c b | a b c d | c b a)."""
    n, c, h, w = images.shape
    pad = size // 2
    if pad >= min(h, w):
        raise ValueError(f"a {size}-tap window needs images larger than {pad} px, got {h} x {w}")
    taps = gaussian_window(size, sigma, images.device, images.dtype)
    x = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, taps.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, taps.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def ssim_map(a: Tensor, b: Tensor, window_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM of N x C x H x W images in [0, 1] -> N x C x H x W (same size).

    Same-size output with reflect padding, not 'valid': the map lines up with the masks pixel for pixel and
    the borders count. C1 = 0.01^2, C2 = 0.03^2.
    """
    _check_pair(a, b, "ssim_map")
    with _no_autocast(a):
        a, b = a.float(), b.float()
        c = a.shape[1]
        # Five local moments in one filtering pass: E[a], E[b], E[a^2], E[b^2], E[ab].
        moments = gaussian_blur(torch.cat([a, b, a * a, b * b, a * b], dim=1), window_size, sigma)
        mu_a, mu_b, aa, bb, ab = moments.split(c, dim=1)
        var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
        num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
        den = (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
        return num / den


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of N x C x H x W `values` weighted by N x 1 x H x W `mask` (all pixels when None)."""
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype)
    return (values * weight).sum() / (weight.sum() * values.shape[1]).clamp(min=_EPS)


def dssim(a: Tensor, b: Tensor, mask: Tensor | None = None, window_size: int = 11,
          sigma: float | None = None) -> Tensor:
    """Mean structural dissimilarity (1 - SSIM) / 2 of N x C x H x W images, inside `mask` when given.

    sigma defaults to 1.5 * window_size / 11, the classic 11-tap / 1.5 ratio, so a larger window really
    looks at a larger neighbourhood instead of padding a 1.5 px Gaussian with zeros.
    """
    _check_mask(mask, a, "dssim")
    sigma = 1.5 * window_size / 11 if sigma is None else sigma
    with _no_autocast(a):
        return _masked_mean((1 - ssim_map(a, b, window_size, sigma)) / 2, mask)


def masked_l1(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute difference of N x C x H x W tensors, weighted by an N x 1 x H x W mask when given."""
    _check_pair(a, b, "masked_l1")
    _check_mask(mask, a, "masked_l1")
    with _no_autocast(a):
        return _masked_mean((a.float() - b.float()).abs(), mask)


def masked_mse(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared difference of N x C x H x W tensors, weighted by an N x 1 x H x W mask when given."""
    _check_pair(a, b, "masked_mse")
    _check_mask(mask, a, "masked_mse")
    with _no_autocast(a):
        return _masked_mean((a.float() - b.float()) ** 2, mask)


def _odd(x: float) -> int:
    """The odd integer nearest to x, at least 3."""
    return max(3, 2 * math.floor(x / 2) + 1)


def dssim_windows(resolution: int, multiscale: bool = True) -> list[int]:
    """SSIM window sizes for a resolution: ~R/11.6 (the face's feature scale), and half that when multiscale."""
    first = _odd(resolution / 11.6)
    return [first, _odd(resolution / 23.2)] if multiscale else [first]


def reconstruction_loss(pred: Tensor, target: Tensor, mask: Tensor, priority: Tensor | None = None, *,
                        dssim_weight: float = 10.0, l1_weight: float = 10.0, priority_weight: float = 3.0,
                        multiscale: bool = True) -> Tensor:
    """SAEHD-style loss of N x 3 x R x R images inside the face `mask` (N x 1 x R x R).

    The mask is blurred (sigma R/64) so the seam region is learned too; both images are multiplied by it
    before DSSIM, so pixels off the blurred mask cannot reach the loss through the SSIM window. DSSIM is the
    mean over `dssim_windows(R)`; L1 is the pixel term. `priority` (eyes+mouth, N x 1 x R x R) adds
    priority_weight * l1_weight * L1 inside it: those few pixels decide whether a face looks right.
    """
    _check_pair(pred, target, "reconstruction_loss")
    _check_mask(mask, pred, "reconstruction_loss")
    _check_mask(priority, pred, "reconstruction_loss priority")
    with _no_autocast(pred):
        pred, target, mask = pred.float(), target.float(), mask.float()
        resolution = pred.shape[-1]
        sigma = max(resolution / 64, 0.5)
        weight = gaussian_blur(mask, _odd(6 * sigma), sigma)
        pred_in, target_in = pred * weight, target * weight
        windows = dssim_windows(resolution, multiscale)
        structure = sum(dssim(pred_in, target_in, weight, w) for w in windows) / len(windows)
        loss = dssim_weight * structure + l1_weight * masked_l1(pred_in, target_in, weight)
        if priority is not None and priority_weight > 0:
            loss = loss + priority_weight * l1_weight * masked_l1(pred, target, priority.float())
        return loss


def mask_loss(pred_mask: Tensor, target_mask: Tensor) -> Tensor:
    """MSE between N x 1 x H x W predicted and target masks in [0, 1].

    MSE, not BCE: the model's mask head already ends in a sigmoid, and a bounded loss on probabilities stays
    stable under bf16 where log(p) near 0 or 1 would not.
    """
    return masked_mse(pred_mask, target_mask)


def _check_kind(kind: str) -> None:
    if kind not in ("hinge", "lsgan"):
        raise ValueError(f"unknown GAN loss {kind!r}: use 'hinge' or 'lsgan'")


def gan_d_loss(real_logits: Tensor, fake_logits: Tensor, kind: str = "hinge") -> Tensor:
    """Discriminator loss on raw (patch) logits of any shape.

    hinge: mean(relu(1 - real)) + mean(relu(1 + fake)); lsgan: (mean((real - 1)^2) + mean(fake^2)) / 2.
    """
    _check_kind(kind)
    with _no_autocast(real_logits):
        real, fake = real_logits.float(), fake_logits.float()
        if kind == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return ((real - 1) ** 2).mean() / 2 + (fake**2).mean() / 2


def gan_g_loss(fake_logits: Tensor, kind: str = "hinge") -> Tensor:
    """Generator loss on the discriminator's logits of fakes. hinge: -mean(fake); lsgan: mean((fake - 1)^2) / 2."""
    _check_kind(kind)
    with _no_autocast(fake_logits):
        fake = fake_logits.float()
        if kind == "hinge":
            return -fake.mean()
        return ((fake - 1) ** 2).mean() / 2


def total_variation(images: Tensor) -> Tensor:
    """Mean absolute difference between vertical and between horizontal neighbours of N x C x H x W, summed."""
    if images.ndim != 4:
        raise ValueError(f"total_variation expects N x C x H x W, got {tuple(images.shape)}")
    dy = (images[:, :, 1:] - images[:, :, :-1]).abs().mean()
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dx + dy
