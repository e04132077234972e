"""The pairwise baselines' networks (StarGAN's G and D at the same scale, without labels) and
what CycleGAN and DIAT share (:class:`PairwiseBaseline`).

CycleGAN and DIAT learn one mapping per model, so their generator needs no target label and
their discriminator no domain classifier. To compare architectures at matching scale (the
paper's Table 3 gives every method about 53M parameters per model), both nets are StarGAN's
(REFERENCE.md, 'Generator' and 'Discriminator') with those two parts removed:

- :class:`PlainGenerator` is StarGAN's G with ``c_dim = 0``: the first 7x7 conv sees the 3
  image channels only; every other layer, width and residual block is the same (both are
  built by :func:`stargan.models.generator.generator_layers`).
- :class:`PatchDiscriminator` is StarGAN's D trunk (built by
  :func:`stargan.models.discriminator.discriminator_trunk`) and its 3x3 real/fake patch
  head, without the classification head.

Parameter count at 128 px (conv_dim 64, 6 residual blocks, 6 D convs): G 8,414,848 (StarGAN's
8,439,936 less the 8 x 64 x 7 x 7 = 25,088 weights of the RaFD label channels) + D 44,721,088
(StarGAN's 44,786,624 less the 2048 x 8 x 2 x 2 = 65,536 of the classifier) = 53,135,936,
"53.1M" per model. The paper's Table 3 prints 52.6M for CycleGAN and DIAT, about 0.54M less.
That cannot be matched while keeping StarGAN's layers: no part of the two nets has that size
(a 3x3 256 -> 256 conv of a residual block is 589,824, the patch head 18,432, the label
channels and classifier above 90,624 together), and the paper does not list its baseline
layers. We keep the exact label-free StarGAN nets, so that the comparison isolates the
method, and report our own counts (tests/unit/test_baselines.py checks them by hand).

Example:
    >>> g = PlainGenerator(image_size=16, conv_dim=8, repeat_num=1)
    >>> d = PatchDiscriminator(image_size=16, conv_dim=8, repeat_num=3)
    >>> d(g(torch.zeros(2, 3, 16, 16))).shape
    torch.Size([2, 1, 2, 2])
"""

from __future__ import annotations

import torch
from torch import nn

from stargan.baselines.common import Baseline, BaselineConfig, ExpressionData
from stargan.config import ConfigError
from stargan.data.labels import LabelSpec
from stargan.models.blocks import check_images
from stargan.models.discriminator import discriminator_trunk
from stargan.models.generator import generator_layers


class PlainGenerator(nn.Module):
    """StarGAN's generator without the label input: encoder, residual bottleneck, decoder,
    tanh; bias-free convs, instance norm with affine weights (parameter names as StarGAN's)."""

    def __init__(self, image_size: int, conv_dim: int, repeat_num: int) -> None:
        super().__init__()
        self.image_size = image_size
        layers, dim = generator_layers(3, conv_dim, repeat_num)
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, S, S] in [-1, 1] -> [N, 3, S, S] in [-1, 1]."""
        check_images(x, self.image_size, "PlainGenerator")
        return self.main(x)


class PatchDiscriminator(nn.Module):
    """StarGAN's discriminator trunk (repeat_num strided 4x4 convs with bias, LeakyReLU 0.01,
    no normalisation) and its 3x3 patch head, without the classification head."""

    def __init__(self, image_size: int, conv_dim: int, repeat_num: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.main, dim = discriminator_trunk(conv_dim, repeat_num)
        self.src = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, S, S] -> patch logits [N, 1, S / 2^r, S / 2^r]."""
        check_images(x, self.image_size, "PatchDiscriminator")
        return self.src(self.main(x))


class PairwiseBaseline(Baseline):
    """CycleGAN's and DIAT's common ground: models between the neutral expression and each
    other one, built from :class:`PlainGenerator` and :class:`PatchDiscriminator`."""

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__(cfg, spec)
        spec.index(cfg.neutral)  # an unknown name lists the valid ones

    @classmethod
    def check_config(cls, cfg: BaselineConfig) -> None:
        """The size rules of StarGAN's G and D (REFERENCE.md), for the label-free versions."""
        if cfg.image_size % 4:
            raise ConfigError(
                f"image_size must be divisible by 4 (G down-samples twice), got {cfg.image_size}"
            )
        if cfg.image_size % 2**cfg.d_repeat_num:
            raise ConfigError(
                f"image_size {cfg.image_size} must be divisible by 2**d_repeat_num = "
                f"{2**cfg.d_repeat_num} (D's strided convs); use fewer D layers for small images"
            )

    def generator(self) -> PlainGenerator:
        return PlainGenerator(self.cfg.image_size, self.cfg.conv_dim, self.cfg.g_repeat_num)

    def discriminator(self) -> PatchDiscriminator:
        return PatchDiscriminator(self.cfg.image_size, self.cfg.conv_dim, self.cfg.d_repeat_num)

    def pair_batches(
        self, y: str, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of neutral faces, then one of ``y`` faces: [N, 3, S, S] each."""
        n = self.cfg.batch_size
        x_real = data.batch(self.cfg.neutral, n, rng).to(device)
        return x_real, data.batch(y, n, rng).to(device)
