"""Speed work, applied from outside the paper's networks through one entry, :func:`accelerate`.

``stargan.models`` builds G and D exactly as the paper's tables describe them. This package
changes how they are computed, never what they are (every state dict stays the same), as the
run's :class:`~stargan.config.SpeedConfig` says:

===================  =====================================================  =================
field                what it does                                           arithmetic
===================  =====================================================  =================
cpu_kernels          group-norm instance norms; D's tiny-map convs as GEMM  same, ~1e-6
channels_last        NHWC weights and activations (oneDNN's NHWC kernels)   same, reordered
g_recompute          G keeps fewer activations for backward                 bit for bit
winograd             G's residual convs by Winograd F(4x4, 3x3), CPU fp32   ~1e-5 of scale
precision 'bf16'     G's and D's passes under bfloat16 autocast             not the paper's
compile_g            G's training passes through torch.compile              same, fused
===================  =====================================================  =================

A named profile (``SPEED_PROFILES`` in stargan.config, ``stargan train --speed NAME``) sets
several at once; the paper presets carry none. Measurements of each: docs/performance.md.

Example:
    >>> G_train, D_train = accelerate(G, D, SpeedConfig(), torch.device("cpu"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from stargan.accel.kernels import (
    GroupNormInstanceNorm,
    SmallMapConv2d,
    WinogradConv2d,
    is_residual_conv,
    swap,
)
from stargan.accel.recompute import recompute
from stargan.config import SPEED_PROFILES, ConfigError, SpeedConfig


class Precision(nn.Module):
    """``net`` run under bfloat16 autocast, its outputs returned in fp32 for the losses.
    Backward passes, the gradient penalty's included, run outside autocast, as torch
    recommends: each op's backward takes its forward's dtype anyway."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor, **kwargs: object) -> torch.Tensor | tuple:
        device = next(self.net.parameters()).device.type
        with torch.autocast(device, torch.bfloat16):
            out = self.net(*inputs, **kwargs)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


def check(speed: SpeedConfig, device: torch.device) -> None:
    """Refuse settings that cannot work on ``device``, before anything is built."""
    if speed.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"speed.precision 'bf16': {torch.cuda.get_device_name(device)} has no bf16 "
            f"arithmetic (GPUs from Ampere on do); use --precision fp32"
        )
    if speed.winograd and device.type != "cpu":
        raise ConfigError(
            f"speed.winograd is a CPU kernel, and this run trains on {device}, where cuDNN "
            f"picks its own convolution algorithms: pass --no-winograd"
        )
    cxx = os.environ.get("CXX") or "g++"  # the compiler TorchInductor runs on the CPU
    if speed.compile_g and device.type == "cpu" and not shutil.which(cxx):
        raise ConfigError(
            f"speed.compile_g: torch.compile turns G into C++ on the CPU, and the compiler "
            f"{cxx!r} ($CXX, else g++) is not on PATH; install one (Debian: apt install g++) "
            f"or pass --no-compile-g"
        )


def use_cpu_kernels(*nets: nn.Module) -> None:
    """The exact CPU kernels in place: group-norm instance norms and, for every strided conv,
    the GEMM path when its output map is tiny (D's last convs; G's strided convs keep their
    maps large enough to stay convolutions at every preset size)."""
    for net in nets:
        swap(net, lambda m: type(m) is nn.InstanceNorm2d, GroupNormInstanceNorm)
        swap(net, lambda m: type(m) is nn.Conv2d and m.stride != (1, 1), SmallMapConv2d)


def accelerate(
    G: nn.Module, D: nn.Module, speed: SpeedConfig, device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """Apply ``speed`` to the built networks and move them to ``device``; returns the modules
    the training passes call, (G_train, D_train).

    Kernels are swapped and memory order set in G and D themselves (parameters, names and
    state dicts unchanged), so checkpoints, samples and evaluation keep using G and D;
    G_train and D_train add what only training wants (autocast, compilation).
    """
    check(speed, device)
    if speed.cpu_kernels:
        use_cpu_kernels(G, D)
    if speed.winograd:
        swap(G, is_residual_conv, WinogradConv2d)
    if speed.g_recompute != "none":
        recompute(G.main, speed.g_recompute)
    # NHWC weights make every convolution's output NHWC too, so the whole graph runs in that
    # order (inputs are converted by the first conv).
    fmt = torch.channels_last if speed.channels_last else torch.contiguous_format
    G.to(device, memory_format=fmt)
    D.to(device, memory_format=fmt)
    G_train, D_train = G, D
    if speed.precision == "bf16":
        G_train, D_train = Precision(G), Precision(D)
    if speed.compile_g:
        # A compiled view of the same module: parameters are shared. Graphs are made at first
        # use, one per kind of call (with and without autograd). D stays eager: the gradient
        # penalty's double backward cannot run through a compiled graph.
        G_train = torch.compile(G_train)
    return G_train, D_train


__all__ = ["SPEED_PROFILES", "Precision", "SpeedConfig", "accelerate", "check"]
