"""speed.winograd's F(4x4, 3x3) convolution (stargan.accel.winograd) is the 3x3 convolution:
values and gradients at any map size and in either memory order; G's residual convs become
WinogradConv2d only through stargan.accel, and G's selective recomputation keeps its output
like a conv's."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from stargan.accel import accelerate, winograd
from stargan.accel.kernels import WinogradConv2d, is_residual_conv, swap
from stargan.accel.recompute import recompute
from stargan.accel.winograd import winograd_conv3x3
from stargan.config import ModelConfig, SpeedConfig
from stargan.models import build_discriminator, build_generator


@pytest.mark.parametrize("size", [(4, 4), (5, 6), (7, 9), (16, 16)])
def test_gradients_are_those_of_the_convolution(size):
    """gradcheck compares the op's backward with finite differences of its forward, and the
    forward is compared with F.conv2d: together they pin the backward to the conv's. Sizes
    that are not whole 4x4 tiles exercise the padding and cropping."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(winograd_conv3x3(x, w), F.conv2d(x, w, padding=1))
    assert torch.autograd.gradcheck(winograd_conv3x3, (x, w))


def _conv_and_grads(conv, x, w, dy):
    x, w = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    y = conv(x, w)
    return [y, *torch.autograd.grad(y, [x, w], dy)]


def test_a_batch_in_chunks_is_the_convolution(monkeypatch):
    """The batch goes through a few images at a time (here 2 + 2 + 1): every chunk's output
    and input gradient lands in its place and the weight gradient sums over all of them."""
    per_image = 36 * 2 * 2 * 8 * 4  # one image's transformed block at 6x7, 8 channels
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", 2 * per_image)
    assert winograd._chunk(5, 6, 7, 8) == 2
    torch.manual_seed(0)
    x, w, dy = (
        torch.randn(*s, dtype=torch.float64) for s in [(5, 8, 6, 7), (8, 8, 3, 3), (5, 8, 6, 7)]
    )
    got = _conv_and_grads(winograd_conv3x3, x, w, dy)
    want = _conv_and_grads(lambda a, b: F.conv2d(a, b, padding=1), x, w, dy)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_matches_the_direct_kernel_in_either_memory_order(channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(2, 16, 12, 12).contiguous(memory_format=fmt).requires_grad_(True)
    w = (torch.randn(16, 16, 3, 3) / 12).contiguous(memory_format=fmt).requires_grad_(True)
    y = winograd_conv3x3(x, w)
    assert y.is_contiguous(memory_format=fmt)
    dy = torch.randn_like(y)
    got = [y, *torch.autograd.grad(y, [x, w], dy)]
    assert got[1].is_contiguous(memory_format=fmt) and got[2].is_contiguous(memory_format=fmt)
    ref = F.conv2d(x, w, padding=1)
    want = [ref, *torch.autograd.grad(ref, [x, w], dy)]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * b.abs().max().item())


class _Calls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.winograd = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.winograd += func is torch.ops.stargan.winograd_conv3x3.default
        return func(*args, **(kwargs or {}))


TINY = ModelConfig(
    image_size=16, c_dim=5, n_classes=5, g_conv_dim=8, d_conv_dim=8, g_repeat_num=2, d_repeat_num=3
)


def _tiny_g():
    torch.manual_seed(0)
    return build_generator(TINY)


def test_conv_is_plain_until_switched_on_and_then_computes_the_same():
    g, d = _tiny_g(), build_discriminator(TINY)
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 5)
    with _Calls() as calls:
        want = g(x, c)
    assert calls.winograd == 0  # the paper's G: inference, export, the default speed settings
    g_train, d_train = accelerate(
        g, d, SpeedConfig(cpu_kernels=False, winograd=True), torch.device("cpu")
    )
    assert g_train is g and d_train is d  # swapped in place
    convs = [m for m in g.modules() if isinstance(m, WinogradConv2d)]
    assert len(convs) == 4  # two per residual block
    assert not any(isinstance(m, WinogradConv2d) for m in d.modules())
    with _Calls() as calls:
        got = g(x, c)
    assert calls.winograd == 4
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # Under autocast (run.precision 'bf16' forbids the pair) the direct kernel runs.
    with _Calls() as calls, torch.autocast("cpu", torch.bfloat16):
        g(x, c)
    assert calls.winograd == 0
    assert list(dict(g.named_parameters())) == list(dict(_tiny_g().named_parameters()))


@pytest.mark.parametrize("mode", ["none", "norms"])
def test_recomputing_norms_keeps_the_winograd_outputs(mode):
    """g_recompute 'norms' saves every conv's output but the first: the Winograd convs run
    once per forward, not again in backward; the gradients are the same bit for bit."""
    g = _tiny_g()
    assert swap(g, is_residual_conv, WinogradConv2d) == 4
    recompute(g.main, mode)
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 5)
    with _Calls() as calls:
        g(x, c).square().mean().backward()
    assert calls.winograd == 4
    grads = [p.grad.clone() for p in g.parameters()]
    g.zero_grad()
    recompute(g.main, "none")
    g(x, c).square().mean().backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, g.parameters(), strict=True))
