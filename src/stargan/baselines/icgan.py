"""IcGAN (Perarnau et al., "Invertible Conditional GANs for image editing", 2016) as the
paper's baseline: one conditional GAN for every expression, plus two encoders.

The cGAN's generator draws a face from a latent vector and a label, G(z, c); its
discriminator judges (image, label) pairs, D(x, c), the label tiled onto the image's
channels (IcGAN conditions D at its input). The encoders invert G: E_z maps an image to its
z, E_y to its label. Translation encodes x -> (E_z(x), E_y(x)), replaces the label by the
target expression and decodes: G(E_z(x), c_target). Training follows the IcGAN paper's
order, one stage each: the cGAN (original GAN loss), then E_z on generated pairs
(z, G(z, c)) with a squared error, then E_y on real labelled images (cross-entropy: our
labels are one class of eight).

Architecture: the IcGAN paper's DCGAN layout, grown by one stage per doubling of the image
side. G: a 4x4 transposed conv from z + c, then transposed convs doubling the size and
halving the width down to ``conv_dim`` (BN, ReLU), and a last one to RGB (tanh). D: strided
4x4 convs from ``conv_dim`` doubling the width down to 4x4 (BN after the first, LeakyReLU
0.2), then a 4x4 conv to one logit. Encoders: the same strided convs at half the width
(BN, ReLU), then two fully connected layers: 8192 -> 4096 -> z for E_z and 8192 -> 512 ->
8 for E_y at 128 px (``64 x conv_dim`` and ``8 x conv_dim`` hidden units). At 128 px with
z = 100 that is 67,839,468 parameters (G 12,917,632, D 11,172,608, E_z 36,761,060, E_y
6,988,168): the paper's Table 3 lists IcGAN as 67.8M x 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stargan import losses
from stargan.baselines.common import (
    Baseline,
    BaselineConfig,
    ExpressionData,
    Stage,
    StepFn,
    adam,
    evaluating,
    floats,
    frozen,
    one_source,
    register_baseline,
    update,
)
from stargan.config import ConfigError
from stargan.data.labels import LabelSpec
from stargan.models.blocks import check_images

_Built = tuple[StepFn, dict[str, torch.optim.Optimizer]]
"""A stage's step function and the optimizers it updates."""


def _stages(image_size: int) -> int:
    """Doublings between the 4x4 map and the image."""
    return int(math.log2(image_size // 4))


class ConditionalGenerator(nn.Module):
    """G(z [N, z_dim], c [N, c_dim]) -> images [N, 3, S, S] in [-1, 1] (DCGAN layout)."""

    def __init__(self, image_size: int, z_dim: int, c_dim: int, conv_dim: int) -> None:
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        dim = conv_dim * 2 ** (_stages(image_size) - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + c_dim, dim, 4, 1, 0, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        ]
        for _ in range(_stages(image_size) - 1):
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(dim // 2),
                nn.ReLU(inplace=True),
            ]
            dim //= 2
        layers += [nn.ConvTranspose2d(dim, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or c.dim() != 2 or (z.shape[1], c.shape[1]) != (self.z_dim, self.c_dim):
            raise ValueError(
                f"IcGAN's G expects z [N, {self.z_dim}] and c [N, {self.c_dim}], got "
                f"{list(z.shape)} and {list(c.shape)}"
            )
        return self.main(torch.cat([z, c.to(z.dtype)], dim=1)[:, :, None, None])


def _down(c_in: int, width: int, stages: int, slope: float) -> tuple[list[nn.Module], int]:
    """Strided 4x4 convs from S px to 4x4, doubling ``width``; BN after the first."""
    act = nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True)
    layers: list[nn.Module] = [nn.Conv2d(c_in, width, 4, 2, 1, bias=False), act]
    for _ in range(stages - 1):
        act = nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True)
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), act]
        width *= 2
    return layers, width


class ConditionalDiscriminator(nn.Module):
    """D(x [N, 3, S, S], c [N, c_dim]) -> real/fake logits [N]; c tiled onto x's channels."""

    def __init__(self, image_size: int, c_dim: int, conv_dim: int) -> None:
        super().__init__()
        self.image_size = image_size
        layers, width = _down(3 + c_dim, conv_dim, _stages(image_size), 0.2)
        self.main = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_size, "IcGAN's D")
        c_map = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.out(self.main(torch.cat([x, c_map], dim=1))).flatten()


class Encoder(nn.Module):
    """Images [N, 3, S, S] -> vectors [N, out_dim]: strided convs, then FC, BN, ReLU, FC."""

    def __init__(self, image_size: int, conv_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.image_size = image_size
        layers, width = _down(3, conv_dim, _stages(image_size), 0.0)
        self.main = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(width * 16, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_size, "IcGAN's encoder")
        return self.fc(self.main(x).flatten(1))


@register_baseline
class IcGAN(Baseline):
    """``G``, ``D``, ``E_z`` and ``E_y`` over the dataset's expressions: one model.

    Example:
        >>> cfg = BaselineConfig.synth("icgan", 16, conv_dim=8, z_dim=4)
        >>> model = IcGAN(cfg, LabelSpec(("happy", "neutral"), "categorical"))
        >>> model.translate(torch.zeros(2, 3, 16, 16), "neutral", "happy").shape
        torch.Size([2, 3, 16, 16])
    """

    method = "icgan"

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__(cfg, spec)
        s, n, w = cfg.image_size, spec.n_labels, cfg.conv_dim
        self.G = ConditionalGenerator(s, cfg.z_dim, n, w)
        self.D = ConditionalDiscriminator(s, n, w)
        self.E_z = Encoder(s, w // 2, 64 * w, cfg.z_dim)
        self.E_y = Encoder(s, w // 2, 8 * w, n)

    @classmethod
    def check_config(cls, cfg: BaselineConfig) -> None:
        s = cfg.image_size
        if s < 8 or s & (s - 1):
            raise ConfigError(
                f"IcGAN needs a power-of-two image_size >= 8 (DCGAN layout from 4x4), got {s}"
            )
        if cfg.conv_dim < 2:
            raise ConfigError(f"IcGAN needs conv_dim >= 2 (encoders use half), got {cfg.conv_dim}")

    def onehot(self, name: str, n: int, device: torch.device | None = None) -> torch.Tensor:
        c = torch.zeros(n, self.spec.n_labels, device=device)
        c[:, self.spec.index(name)] = 1.0
        return c

    def translate(
        self, x: torch.Tensor, source_label: str | Sequence[str], target_name: str
    ) -> torch.Tensor:
        """G(E_z(x), target): the encoded label is replaced, so the source only has to be a
        known expression (any source works)."""
        one_source(source_label, self.spec)
        with evaluating(self):
            return self.G(self.E_z(x), self.onehot(target_name, x.shape[0], x.device))

    @torch.no_grad()
    def encode_labels(self, x: torch.Tensor) -> torch.Tensor:
        """E_y's class probabilities [N, n_labels] for images [N, 3, S, S]."""
        with evaluating(self):
            return self.E_y(x).softmax(dim=1)

    def stage_names(self) -> list[str]:
        return ["cgan", "encoder_z", "encoder_y"]

    def build_stage(
        self, k: int, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> Stage:
        builders = (self._cgan_stage, self._ez_stage, self._ey_stage)
        step, optimizers = builders[k](data, rng, device)
        return Stage(self.stage_names()[k], step, optimizers)

    def _random_labels(self, n: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
        k = torch.randint(self.spec.n_labels, (n,), generator=rng)
        return F.one_hot(k, self.spec.n_labels).float().to(device)

    def _cgan_stage(
        self, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> _Built:
        cfg, kind = self.cfg, self.cfg.resolved_adversarial
        opt_g, opt_d = adam([self.G], cfg), adam([self.D], cfg)
        self.G.train(), self.D.train()

        def step(it: int) -> dict[str, float]:
            x_real, c_real = data.labelled_batch(cfg.batch_size, rng)
            x_real, c_real = x_real.to(device), c_real.to(device)
            z = torch.randn(cfg.batch_size, cfg.z_dim, generator=rng).to(device)
            c_fake = self._random_labels(cfg.batch_size, rng, device)

            # Update D on real (image, label) pairs and generated ones.
            fake = self.G(z, c_fake)
            d_real, d_fake = self.D(x_real, c_real), self.D(fake.detach(), c_fake)
            terms = {"D/adv": losses.d_adversarial_loss(kind, d_real, d_fake)}
            update(opt_d, terms["D/adv"])

            # Update G through the updated D.
            with frozen(self.D):
                terms["G/adv"] = losses.g_adversarial_loss(kind, self.D(fake, c_fake))
                update(opt_g, terms["G/adv"])
            return floats(terms)

        return step, {"G": opt_g, "D": opt_d}

    def _ez_stage(self, data: ExpressionData, rng: torch.Generator, device: torch.device) -> _Built:
        cfg = self.cfg
        opt = adam([self.E_z], cfg)
        self.G.eval(), self.E_z.train()  # pairs from the finished G, as at translation

        def step(it: int) -> dict[str, float]:
            z = torch.randn(cfg.batch_size, cfg.z_dim, generator=rng).to(device)
            with torch.no_grad():
                x = self.G(z, self._random_labels(cfg.batch_size, rng, device))
            terms = {"E_z/mse": F.mse_loss(self.E_z(x), z)}
            update(opt, terms["E_z/mse"])
            return floats(terms)

        return step, {"E_z": opt}

    def _ey_stage(self, data: ExpressionData, rng: torch.Generator, device: torch.device) -> _Built:
        cfg = self.cfg
        opt = adam([self.E_y], cfg)
        self.E_y.train()

        def step(it: int) -> dict[str, float]:
            x, c = data.labelled_batch(cfg.batch_size, rng)
            logits = self.E_y(x.to(device))
            terms = {"E_y/ce": losses.classification_loss("categorical", logits, c.to(device))}
            update(opt, terms["E_y/ce"])
            return floats(terms)

        return step, {"E_y": opt}
