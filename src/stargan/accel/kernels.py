"""CPU kernels that compute the paper's layers with the same maths, faster, swapped into the
built networks in place (same parameters, names and initialisation; state dicts unchanged).

- :class:`GroupNormInstanceNorm`: instance norm by torch's group-norm kernel (speed.cpu_kernels).
- :class:`SmallMapConv2d`: a conv with a tiny output map as one matrix product (speed.cpu_kernels).
- :class:`WinogradConv2d`: G's residual 3x3 convs by F(4x4, 3x3) (speed.winograd; rounds more).

Each falls back to the plain layer wherever it does not apply (other devices, shapes, autocast).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from stargan.accel.winograd import winograd_conv3x3


class GroupNormInstanceNorm(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that normalises on the CPU with torch's group-norm kernel, one group
    per channel.

    Why: on the CPU ``instance_norm`` is a batch norm over a ``[1, N*C, H, W]`` view, and the
    group-norm kernel computes the same per-image, per-channel statistics about 2x faster
    forward and 1.3x forward + backward at G's sizes (docs/performance.md). The two round
    differently (about 1e-6 apart); other devices keep instance_norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.track_running_stats:
            return super().forward(x)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


class SmallMapConv2d(nn.Conv2d):
    """nn.Conv2d that computes a small output map from long patches as one matrix product over
    the unfolded input, on the CPU.

    Why: D's last strided convs hold most of its weights (1024 x 2048 x 4 x 4 at 128 px) and
    produce maps of 2 x 2 or 4 x 4 pixels. oneDNN's CPU kernels handle that shape badly: on one
    thread the 2 x 2 layer's part of a D update took about 4x as long as the same arithmetic
    as one GEMM, the 4 x 4 layer's about 2x. Larger maps or shorter patches are faster as
    convolutions, so only a map of at most ``max_positions`` pixels whose patches (C_in x kh x
    kw) hold at least ``min_patch`` values takes the GEMM path (docs/performance.md).
    """

    max_positions = 16
    min_patch = 4096

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type != "cpu"
            or x.dim() != 4
            or self.groups != 1
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or self.weight[0].numel() < self.min_patch
        ):
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        ho = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ho * wo > self.max_positions:
            return super().forward(x)
        n, c_in = x.shape[:2]
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        w = self.weight
        # [N, C_in*kh*kw, L] -> one GEMM [N*L, patch] @ [patch, C_out].
        nhwc = w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        if nhwc:
            # A channels_last weight is [C_out, kh, kw, C_in] in memory: the patches are laid
            # out to match it, so the GEMM reads the weight in place instead of copying it
            # (134 MB per D pass for D's last conv at 128 px), and the output stays NHWC.
            rows = cols.view(n, c_in, kh * kw, -1).permute(0, 3, 2, 1).reshape(n * ho * wo, -1)
            w_mat = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
        else:
            rows = cols.transpose(1, 2).reshape(n * ho * wo, -1)
            w_mat = w.flatten(1)
        out = rows @ w_mat.t()
        if self.bias is not None:
            out = out + self.bias
        out = out.view(n, ho, wo, -1).permute(0, 3, 1, 2)
        return out if nhwc else out.contiguous()


class WinogradConv2d(nn.Conv2d):
    """A 3x3, stride 1, padding 1, bias-free ``nn.Conv2d`` computed by Winograd's F(4x4, 3x3) on
    the CPU in fp32 (stargan.accel.winograd); exactly nn.Conv2d on other devices and under
    autocast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        return winograd_conv3x3(x, self.weight)


def is_residual_conv(m: nn.Module) -> bool:
    """A 3x3 same-width, stride-1, padding-1, bias-free conv: G's residual-block convs."""
    return (
        type(m) is nn.Conv2d
        and m.kernel_size == (3, 3)
        and m.stride == (1, 1)
        and m.padding == (1, 1)
        and m.in_channels == m.out_channels
        and m.bias is None
        and m.groups == 1
    )


def swap(module: nn.Module, match: Callable[[nn.Module], bool], cls: type[nn.Module]) -> int:
    """Turn every submodule that ``match``es into ``cls`` in place, keeping its parameters,
    buffers and settings (``cls`` must subclass the module's class and add no state); returns
    how many. In place, so optimizers, checkpoints and DDP see the very same parameters."""
    hits = [m for m in module.modules() if match(m)]
    for m in hits:
        if not isinstance(cls, type) or not issubclass(cls, type(m)):
            raise TypeError(f"{cls.__name__} does not extend {type(m).__name__}")
        m.__class__ = cls
    return len(hits)
