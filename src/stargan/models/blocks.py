"""Pieces shared by the generator and the discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stargan.models.winograd import winograd_conv3x3


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters, names and maths) that normalises batches on the
    CPU with torch's group-norm kernel, one group per channel.

    Why: on the CPU ``instance_norm`` is a batch norm over a ``[1, N*C, H, W]`` view, and the
    group-norm kernel computes the same per-image, per-channel statistics about 2x faster
    forward and 1.3x forward + backward at G's sizes (docs/performance.md). The two round
    differently (about 1e-6 apart); other devices keep instance_norm."""

    group_kernel = True
    """False: always instance_norm (the benchmarks' reference mode, as the release computes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = x.device.type != "cpu" or x.dim() != 4 or self.track_running_stats
        if plain or not self.group_kernel:
            return super().forward(x)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def instance_norm(channels: int) -> InstanceNorm2d:
    """Instance norm with learned affine and *no* running statistics.

    The official release keeps ``track_running_stats=True`` so its 2018 checkpoints load, and
    then ``.eval()`` switches to those running averages and ruins every output. Without
    running stats there is nothing to switch to: train and eval modes compute the same thing.
    """
    return InstanceNorm2d(channels, affine=True, track_running_stats=False)


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels, 3, 1, 1, bias=False)`` (same parameters, names and
    initialisation) that computes by Winograd's F(4x4, 3x3) when ``winograd`` is set
    (run.winograd: the trainer sets it on G's residual convs), on the CPU in fp32.

    Why: see stargan.models.winograd. Elsewhere (other devices, under autocast, or with
    ``winograd`` off: inference, export, every preset's default) this is exactly nn.Conv2d."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, 3, 1, 1, bias=False)
        self.winograd = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not self.winograd
            or x.device.type != "cpu"
            or x.dim() != 4
            or torch.is_autocast_enabled(x.device.type)
        ):
            return super().forward(x)
        return winograd_conv3x3(x, self.weight)


def use_winograd(module: nn.Module, on: bool) -> None:
    """Turn F(4x4, 3x3) on or off (run.winograd) for every WinogradConv2d in ``module``."""
    for m in module.modules():
        if isinstance(m, WinogradConv2d):
            m.winograd = on


class ResidualBlock(nn.Module):
    """x + [Conv3x3, IN, ReLU, Conv3x3, IN](x), no activation after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            WinogradConv2d(channels),
            instance_norm(channels),
            nn.ReLU(),
            WinogradConv2d(channels),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class SmallMapConv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, names, initialisation and results) that computes a small
    output map from long patches as one matrix product over the unfolded input, on the CPU.

    Why: D's last strided convs hold most of its weights (1024 x 2048 x 4 x 4 at 128 px) and
    produce maps of 2 x 2 or 4 x 4 pixels. oneDNN's CPU kernels handle that shape badly: on one
    thread the 2 x 2 layer's part of a D update took about 4x as long as the same arithmetic
    as one GEMM, the 4 x 4 layer's about 2x. Larger maps or shorter patches are faster as
    convolutions, so only a map of at most ``max_positions`` pixels whose patches (C_in x kh x
    kw) hold at least ``min_patch`` values takes the GEMM path; elsewhere (other devices,
    groups, other padding modes) this is exactly nn.Conv2d. Measurements and commands:
    docs/performance.md.
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


def check_images(x: torch.Tensor, image_size: int, who: str) -> None:
    """Shape contract for image batches: [N, 3, image_size, image_size]."""
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != image_size or x.shape[3] != image_size:
        raise ValueError(
            f"{who} expects images shaped [N, 3, {image_size}, {image_size}], got {list(x.shape)}"
        )
