"""SmallMapConv2d (speed.cpu_kernels: D's tiny-map convs as one GEMM) is nn.Conv2d: same
parameters, same initialisation, same outputs, gradients and gradient-penalty double backward;
D's convs become it only through stargan.accel."""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from stargan import losses
from stargan.accel import use_cpu_kernels
from stargan.accel.kernels import SmallMapConv2d
from stargan.config import ModelConfig
from stargan.models import build_discriminator


def twins(*args, **kwargs):
    """An nn.Conv2d and a SmallMapConv2d with the same seeded initialisation."""
    torch.manual_seed(0)
    conv = nn.Conv2d(*args, **kwargs).double()
    torch.manual_seed(0)
    small = SmallMapConv2d(*args, **kwargs).double()
    small.min_patch = 0  # take the GEMM path whatever the patch length
    return conv, small


def count_conv_calls(monkeypatch):
    calls = []
    original = nn.Conv2d._conv_forward
    monkeypatch.setattr(
        nn.Conv2d, "_conv_forward", lambda self, *a: calls.append(1) or original(self, *a)
    )
    return calls


@pytest.mark.parametrize(
    ("args", "kwargs", "side"),
    [
        ((16, 32, 4, 2, 1), {}, 4),  # D's last strided conv: 4 x 4 -> 2 x 2
        ((16, 32, 4, 2, 1), {}, 8),  # 8 x 8 -> 4 x 4 (16 positions, the limit)
        ((8, 5, 2), {"bias": False}, 2),  # a head spanning the whole map
        ((8, 6, (3, 2)), {"stride": (1, 2), "padding": (1, 0), "dilation": (1, 2)}, 3),
    ],
)
def test_gemm_path_matches_conv2d_values_gradients_and_double_backward(
    args, kwargs, side, monkeypatch
):
    conv, small = twins(*args, **kwargs)
    assert small.state_dict().keys() == conv.state_dict().keys()
    for a, b in zip(conv.state_dict().values(), small.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same initialisation: seeded runs start alike
    calls = count_conv_calls(monkeypatch)
    x = torch.randn(3, args[0], side, side, dtype=torch.float64)
    results = []
    for layer in (conv, small):
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        # The gradient penalty's pattern: input gradient with its graph, then backward.
        (gx,) = torch.autograd.grad((y * y.detach().sin()).sum(), xi, create_graph=True)
        loss = y.square().mean() + gx.square().sum()
        grads = torch.autograd.grad(loss, [xi, *layer.parameters()])
        results.append((y, *grads))
    assert len(calls) == 1  # only the nn.Conv2d twin ran a convolution kernel
    for a, b in zip(*results, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


class _Copies(TorchDispatchMode):
    """Records the element counts of the copies made under it."""

    def __init__(self):
        super().__init__()
        self.numels = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten.clone.default, torch.ops.aten.copy_.default):
            self.numels.append(out.numel())
        return out


def test_gemm_path_reads_a_channels_last_weight_in_place():
    """speed.channels_last: the weight lies in memory as [C_out, kh, kw, C_in], and the GEMM
    reads it so (D's last weight is 134 MB at 128 px: a copy per pass cost more than the
    GEMM), hands back a channels_last output, and still computes nn.Conv2d's values and
    gradients, the gradient penalty's double backward included."""
    conv, small = twins(16, 32, 4, 2, 1)
    small.to(memory_format=torch.channels_last)
    x = torch.randn(3, 16, 4, 4, dtype=torch.float64)
    results = []
    for layer, xi in ((conv, x.clone()), (small, x.to(memory_format=torch.channels_last))):
        xi.requires_grad_(True)
        with _Copies() as copies:
            y = layer(xi)
        (gx,) = torch.autograd.grad((y * y.detach().sin()).sum(), xi, create_graph=True)
        loss = y.square().mean() + gx.square().sum()
        results.append((y, *torch.autograd.grad(loss, [xi, *layer.parameters()])))
    assert small.weight.numel() not in copies.numels
    y, _, weight_grad, _ = results[1]
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert weight_grad.stride() == small.weight.stride()  # accumulated without a copy
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_large_maps_and_short_patches_stay_convolutions(monkeypatch):
    calls = count_conv_calls(monkeypatch)
    big_map = SmallMapConv2d(512, 8, 4, 2, 1)  # 10 x 10 -> 5 x 5: 25 positions
    short = SmallMapConv2d(8, 8, 4, 2, 1)  # patches of 128 values
    big_map(torch.randn(1, 512, 10, 10))
    short(torch.randn(1, 8, 4, 4))
    assert len(calls) == 2


def test_discriminator_with_gemm_convs_matches_plain_convolutions():
    # At 32 px with 32 channels and 5 strided convs the last one (256 -> 512, 2 x 2 -> 1 x 1)
    # takes the GEMM path in float32, as in the synth-demo preset.
    cfg = ModelConfig(image_size=32, c_dim=5, n_classes=5, d_conv_dim=32, d_repeat_num=5)
    torch.manual_seed(0)
    d = build_discriminator(cfg)
    assert not any(isinstance(m, SmallMapConv2d) for m in d.modules())  # the paper's D
    state = {k: v.clone() for k, v in d.state_dict().items()}
    use_cpu_kernels(d)
    gemm_layers = [m for m in d.modules() if isinstance(m, SmallMapConv2d)]
    assert len(gemm_layers) == cfg.d_repeat_num  # every strided conv; the heads stay
    assert d.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in d.state_dict().items())
    assert gemm_layers[-1].weight[0].numel() >= SmallMapConv2d.min_patch
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    alpha = torch.rand(2)
    out = []
    for gemm in (True, False):
        for m in gemm_layers:
            m.max_positions = SmallMapConv2d.max_positions if gemm else 0
        d.zero_grad(set_to_none=True)
        src, cls = d(x)
        x_hat = losses.interpolate(x[:2], x[2:], alpha)
        loss = src.mean() + cls.square().mean()
        loss = loss + losses.gradient_penalty(d(x_hat)[0], x_hat)
        loss.backward()
        out.append([src, cls, *(p.grad for p in d.parameters())])
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
