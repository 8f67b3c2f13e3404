"""Pair models and discriminators: shapes, ranges, gradients, the registry's checks, sizes and layouts."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facewright.errors import OptionError
from facewright.train.models import (
    PairModel,
    create_discriminator,
    create_model,
    describe,
    model_names,
    register_model,
)

TINY = {"ae_dims": 16, "e_dims": 4, "d_dims": 4, "d_mask_dims": 2}  # every architecture in milliseconds


def _faces(n: int = 2, resolution: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def _tiny(name: str, resolution: int = 64) -> PairModel:
    torch.manual_seed(0)
    return create_model(name, resolution, **({} if name == "test-ae" else TINY))


def test_the_registry_holds_every_architecture():
    assert set(model_names()) == {"df", "df-u", "df-d", "df-ud", "liae", "liae-u", "liae-d", "liae-ud", "test-ae"}


@pytest.mark.parametrize("name", model_names())
def test_every_model_renders_both_people_and_gets_gradients_everywhere(name):
    model, x = _tiny(name), _faces()
    assert model.name == name and model.resolution == 64
    json.dumps(model.options)  # a checkpoint stores them as they are
    loss = torch.zeros(())
    for identity in ("a", "b"):
        image, mask = model(x, identity)
        assert image.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
        for out in (image, mask):
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        loss = loss + F.l1_loss(image, x) + F.l1_loss(mask, x[:, :1])
    loss.backward()
    for param_name, param in model.named_parameters():  # A and B together reach every weight, in DF and LIAE
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    for child_name, child in model.named_children():
        assert sum(p.grad.abs().sum() for p in child.parameters()) > 0, child_name


@pytest.mark.parametrize("name", ["test-ae", "df-u", "liae-d"])
def test_name_resolution_and_options_rebuild_the_same_model(name):
    model = _tiny(name, resolution=80)
    again = create_model(model.name, model.resolution, **json.loads(json.dumps(model.options)))
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}
    again.load_state_dict(model.state_dict())
    x = _faces(1, 80)
    assert torch.equal(model(x, "a")[0], again(x, "a")[0])


@pytest.mark.parametrize(("name", "resolution", "options"), [
    ("sae", 128, {}),
    ("liae-ud", 48, {}),
    ("liae-ud", 520, {}),
    ("liae-ud", 100, {}),
    ("df", True, {}),
    ("df", 128, {"ae_dims": 0}),
    ("df", 128, {"e_dims": -8}),
    ("df", 128, {"d_dims": 1.5}),
    ("df", 128, {"d_mask_dims": "22"}),
    ("df", 128, {"d_dims": 100000}),
    ("df", 128, {"dims": 64}),
])
def test_bad_names_resolutions_and_widths_are_option_errors_with_a_fix(name, resolution, options):
    with pytest.raises(OptionError) as caught:
        create_model(name, resolution, **options)
    assert caught.value.fix


def test_an_unknown_name_lists_the_registered_ones():
    with pytest.raises(OptionError) as caught:
        create_model("sae-hd")
    assert "liae-ud" in caught.value.fix and "test-ae" in caught.value.fix


def test_the_identity_must_be_a_or_b():
    with pytest.raises(ValueError, match="identity"):
        _tiny("test-ae")(_faces(1), "c")


def test_register_model_names_by_function_name():
    @register_model
    def my_tiny_df(resolution: int = 64, **options):
        return create_model("df", resolution, **options)

    try:
        assert "my-tiny-df" in model_names()
        assert isinstance(create_model("my-tiny-df", 64, **TINY), PairModel)
    finally:
        from facewright.train import models
        del models._REGISTRY["my-tiny-df"]


@pytest.mark.parametrize("name", ["df-ud", "liae-d", "test-ae"])
@pytest.mark.parametrize("resolution", [80, 128])
def test_half_size_decoders_render_at_full_resolution(name, resolution):
    model = _tiny(name, resolution)
    decoder = model.decoder_for("a")
    features = []
    decoder.image.register_forward_hook(lambda module, args, out: features.append(out.shape[-1]))
    image, mask = model(_faces(1, resolution), "a")
    assert features == [resolution // 2]  # at half size (80: from a cropped code)
    assert image.shape[-2:] == mask.shape[-2:] == (resolution, resolution)


def test_full_size_decoders_run_at_full_resolution():
    model = _tiny("liae-u")
    features = []
    model.decoder.image.register_forward_hook(lambda module, args, out: features.append(out.shape[-1]))
    model(_faces(1), "b")
    assert features == [64]


@torch.no_grad()
def test_df_decoders_are_separate():
    model, x = _tiny("df-ud"), _faces()
    as_a, as_b = model(x, "a"), model(x, "b")
    for param in model.decoder_b.parameters():
        param.add_(torch.randn_like(param))
    for before, after in zip(as_a, model(x, "a"), strict=True):
        assert torch.equal(before, after)
    assert not torch.allclose(as_b[0], model(x, "b")[0])


@torch.no_grad()
def test_liae_a_uses_only_the_shared_inter_and_b_differs():
    model, x = _tiny("liae-ud"), _faces()
    as_a, as_b = model(x, "a"), model(x, "b")
    assert (as_a[0] - as_b[0]).abs().max() > 1e-4
    for param in model.inter_b.parameters():
        param.add_(torch.randn_like(param))
    assert torch.equal(as_a[0], model(x, "a")[0])  # a swap (B's frame as "a") never reads B's own code
    assert not torch.allclose(as_b[0], model(x, "b")[0])


def _expected_gflops(model: PairModel, identity: str = "a") -> float:
    """Multiply-adds x 2 of every conv and linear layer, counted from their output shapes."""
    flops = []

    def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            flops.append(2 * module.in_channels * k * out.numel())
        elif isinstance(module, nn.Linear):
            flops.append(2 * module.in_features * out.numel())

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(_faces(1, model.resolution), identity)
    for handle in handles:
        handle.remove()
    return sum(flops) / 1e9


@pytest.mark.parametrize("name", ["test-ae", "df"])
def test_describe_counts_parameters_and_the_swap_path_flops(name):
    small, large = _tiny(name, 64), _tiny(name, 128)
    info = describe(small)
    assert info.name == name and info.resolution == 64 and info.options == small.options
    assert info.parameters == sum(p.numel() for p in small.parameters())
    assert info.gflops_per_sample == pytest.approx(_expected_gflops(small), rel=1e-6)
    assert 0 < info.gflops_per_sample < describe(large).gflops_per_sample


def test_liae_swap_path_flops_skip_inter_b():
    model = _tiny("liae")
    as_a, as_b = _expected_gflops(model, "a"), _expected_gflops(model, "b")
    inter = model.inter_b
    inter_b = 2 * (inter.squeeze.weight.numel() + inter.expand.weight.numel()) + 2 * 9 * inter.up[0].in_channels \
        * inter.up[0].out_channels * (model.code_size // 2) ** 2
    assert describe(model).gflops_per_sample == pytest.approx(as_a, rel=1e-6)
    assert as_b - as_a == pytest.approx(inter_b / 1e9, rel=1e-6)


@pytest.mark.parametrize(("resolution", "side"), [(64, 16), (96, 12), (128, 16), (256, 16)])
@pytest.mark.parametrize("spectral", [True, False])
def test_patch_discriminator_gives_a_grid_of_logits_and_backpropagates(resolution, side, spectral):
    torch.manual_seed(0)
    disc = create_discriminator(resolution, dims=8, spectral=spectral)
    x = _faces(2, resolution).requires_grad_(True)
    logits = disc(x)
    assert logits.shape == (2, 1, side, side) and torch.isfinite(logits).all()
    logits.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in disc.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize(("resolution", "dims", "kind"), [(48, 64, "patch"), (128, 0, "patch"), (128, 64, "gan")])
def test_bad_discriminator_options_are_option_errors(resolution, dims, kind):
    with pytest.raises(OptionError):
        create_discriminator(resolution, dims=dims, kind=kind)


@torch.no_grad()
def test_channels_last_matches_the_default_layout():
    model, x = _tiny("test-ae"), _faces()
    expected = model(x, "b")
    fast = model.to(memory_format=torch.channels_last)
    got = fast(x.contiguous(memory_format=torch.channels_last), "b")
    assert got[0].is_contiguous(memory_format=torch.channels_last)  # kept past the dense bottleneck
    for want, have in zip(expected, got, strict=True):
        assert torch.allclose(want, have, atol=1e-4)


def test_bf16_autocast_trains():
    model, x = _tiny("test-ae"), _faces()
    disc = create_discriminator(64, dims=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image, mask = model(x, "a")
        logits = disc(image)
    assert image.dtype == torch.bfloat16 and torch.isfinite(image.float()).all()
    assert 0 <= image.min() and image.max() <= 1 and 0 <= mask.min() and mask.max() <= 1
    (F.l1_loss(image.float(), x) + logits.float().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(("name", "normalized"), [("df-u", True), ("liae-ud", True), ("df", False), ("liae-d", False)])
def test_u_variants_give_unit_rms_features_per_pixel(name, normalized):
    encoder = _tiny(name).encoder
    with torch.no_grad():
        raw, z = encoder.down(_faces() * 2 - 1).double(), encoder(_faces()).double()
    rms = z.pow(2).mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=0.05) == normalized
    if normalized:  # x / sqrt(mean over channels of x^2 + 1e-6), computed here in float64
        assert torch.allclose(z, raw / (raw.pow(2).mean(dim=1, keepdim=True) + 1e-6).sqrt(), rtol=1e-4, atol=1e-6)
