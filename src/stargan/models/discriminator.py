"""StarGAN discriminator: a PatchGAN critic and an auxiliary domain classifier on one trunk."""

from __future__ import annotations

import torch
from torch import nn

from stargan.config import ModelConfig
from stargan.models.blocks import check_images


def discriminator_trunk(conv_dim: int, repeat_num: int) -> tuple[nn.Sequential, int]:
    """D's shared trunk: ``repeat_num`` strided 4x4 convs with bias, each followed by
    LeakyReLU(0.01), from ``conv_dim`` channels doubling; returns it and its output width.

    Also the trunk of the pairwise baselines' D (``stargan.baselines.networks``).
    """
    dim = conv_dim
    layers: list[nn.Module] = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(0.01)]
    for _ in range(repeat_num - 1):
        layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim *= 2
    return nn.Sequential(*layers), dim


class Discriminator(nn.Module):
    """d_repeat_num strided 4x4 convs with LeakyReLU(0.01) and no normalisation (so D has no
    batch-dependent layer and real, fake and interpolated images may share one forward), then
    a 3x3 real/fake patch head and a classification head spanning the remaining map.

    Example:
        >>> d = Discriminator(ModelConfig(image_size=32, c_dim=5, n_classes=5, d_conv_dim=8,
        ...                               d_repeat_num=5))
        >>> [t.shape for t in d(torch.zeros(2, 3, 32, 32))]
        [torch.Size([2, 1, 1, 1]), torch.Size([2, 5])]
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.image_size = cfg.image_size
        self.main, dim = discriminator_trunk(cfg.d_conv_dim, cfg.d_repeat_num)
        final = cfg.image_size // 2**cfg.d_repeat_num
        self.src = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(dim, cfg.n_classes, final, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [N, 3, S, S] -> (patch logits [N, 1, S/2^r, S/2^r], class logits [N, n_classes])."""
        check_images(x, self.image_size, "Discriminator")
        h = self.main(x)
        return self.src(h), self.cls(h).flatten(1)
