"""Pieces shared by the generator and the discriminator."""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Instance norm with learned affine and *no* running statistics.

    The official release keeps ``track_running_stats=True`` so its 2018 checkpoints load, and
    then ``.eval()`` switches to those running averages and ruins every output. Without
    running stats there is nothing to switch to: train and eval modes compute the same thing.
    """
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + [Conv3x3, IN, ReLU, Conv3x3, IN](x), no activation after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


def check_images(x: torch.Tensor, image_size: int, who: str) -> None:
    """Shape contract for image batches: [N, 3, image_size, image_size]."""
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != image_size or x.shape[3] != image_size:
        raise ValueError(
            f"{who} expects images shaped [N, 3, {image_size}, {image_size}], got {list(x.shape)}"
        )
