"""CycleGAN (Zhu et al., ICCV 2017) as the paper's baseline: one model pair per domain pair.

For each expression y other than neutral, G_y maps neutral faces to y and F_y maps y back to
neutral; D_y tells real y faces from G_y's, D_x real neutral faces from F_y's. Losses, as the
CycleGAN paper: least-squares adversarial losses, the cycle-consistency L1 losses
||F(G(x)) - x|| + ||G(F(y)) - y|| weighted by ``lambda_cyc`` (10), an optional identity loss
(``lambda_identity``, off by default), D's loss halved, and D shown a history of 50
generated images. Generators go first, then both discriminators, every step.

Seven pairs (neutral <-> each other RaFD expression) make 14 generators, each with its own
discriminator: the paper's Table 3 counts CycleGAN as "52.6M x 14". Our G and D are
StarGAN's without labels (:mod:`stargan.baselines.networks`): 53.1M per G + D at 128 px.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from stargan import losses
from stargan.baselines.common import (
    Baseline,
    BaselineConfig,
    BaselineError,
    ExpressionData,
    StepFn,
    adam,
    evaluating,
    frozen,
    one_source,
    register_baseline,
    set_lr,
)
from stargan.baselines.networks import PatchDiscriminator, PlainGenerator, check_pairwise_sizes
from stargan.data.labels import LabelSpec


class ImagePool:
    """CycleGAN's history of generated images: once full, each new image is, with
    probability 1/2, swapped for a stored one, so D also sees older generators' output."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """images [N, 3, S, S] (detached) -> the batch to show D, [N, 3, S, S]."""
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(1, generator=rng).item() < 0.5:
                k = int(torch.randint(self.size, (1,), generator=rng))
                out.append(self.images[k])
                self.images[k] = image
            else:
                out.append(image)
        return torch.stack(out)


@register_baseline
class CycleGAN(Baseline):
    """Per expression y: ``pairs[y]`` holds G (neutral -> y), F (y -> neutral), D_y, D_x.

    Example:
        >>> cfg = BaselineConfig.synth("cyclegan", 16, conv_dim=8, g_repeat_num=1)
        >>> model = CycleGAN(cfg, LabelSpec(("happy", "neutral"), "categorical"))
        >>> model.translate(torch.zeros(2, 3, 16, 16), "neutral", "happy").shape
        torch.Size([2, 3, 16, 16])
    """

    method = "cyclegan"

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__(cfg, spec)
        spec.index(cfg.neutral)

        def gen() -> PlainGenerator:
            return PlainGenerator(cfg.image_size, cfg.conv_dim, cfg.g_repeat_num)

        def disc() -> PatchDiscriminator:
            return PatchDiscriminator(cfg.image_size, cfg.conv_dim, cfg.d_repeat_num)

        self.pairs = nn.ModuleDict(
            {
                y: nn.ModuleDict({"G": gen(), "F": gen(), "D_y": disc(), "D_x": disc()})
                for y in self.targets
            }
        )

    @classmethod
    def check_config(cls, cfg: BaselineConfig) -> None:
        check_pairwise_sizes(cfg.image_size, cfg.d_repeat_num)

    def units(self) -> list[nn.Module]:
        """Each generator with the discriminator of its output domain: 2 per pair."""
        out: list[nn.Module] = []
        for pair in self.pairs.values():
            out += [
                nn.ModuleList([pair["G"], pair["D_y"]]),
                nn.ModuleList([pair["F"], pair["D_x"]]),
            ]
        return out

    def translate(
        self, x: torch.Tensor, source_label: str | Sequence[str], target_name: str
    ) -> torch.Tensor:
        """neutral -> y with G_y, y -> neutral with F_y; anything else was never learned."""
        source = one_source(source_label, self.spec)
        self.spec.index(target_name)
        if source == target_name:
            return x.clone()
        with evaluating(self):
            if source == self.cfg.neutral:
                return self.pairs[target_name]["G"](x)
            if target_name == self.cfg.neutral:
                return self.pairs[source]["F"](x)
        raise BaselineError(
            f"CycleGAN learned {self.cfg.neutral} <-> each expression only; it cannot translate "
            f"{source} -> {target_name} with one model (Table 3 uses {self.cfg.neutral} inputs)"
        )

    def stages(
        self, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> Iterator[tuple[str, StepFn]]:
        for y in self.targets:
            yield f"{self.cfg.neutral}<->{y}", self._pair_step(y, data, rng, device)

    def _pair_step(
        self, y: str, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> StepFn:
        cfg, kind = self.cfg, self.cfg.resolved_adversarial
        pair = self.pairs[y]
        g, f, d_y, d_x = pair["G"], pair["F"], pair["D_y"], pair["D_x"]
        opt_g, opt_d = adam([g, f], cfg), adam([d_y, d_x], cfg)
        pool_y, pool_x = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        pair.train()

        def step(it: int) -> dict[str, float]:
            set_lr([opt_g, opt_d], cfg, it)
            x_real = data.batch(cfg.neutral, cfg.batch_size, rng).to(device)
            y_real = data.batch(y, cfg.batch_size, rng).to(device)

            # Update both generators through the current discriminators.
            y_fake, x_fake = g(x_real), f(y_real)
            with frozen(d_y, d_x):
                terms = {
                    "G/adv": losses.g_adversarial_loss(kind, d_y(y_fake)),
                    "F/adv": losses.g_adversarial_loss(kind, d_x(x_fake)),
                    "cyc": losses.reconstruction_loss(x_real, f(y_fake))
                    + losses.reconstruction_loss(y_real, g(x_fake)),
                }
                g_loss = terms["G/adv"] + terms["F/adv"] + cfg.lambda_cyc * terms["cyc"]
                if cfg.lambda_identity:
                    terms["idt"] = losses.reconstruction_loss(
                        y_real, g(y_real)
                    ) + losses.reconstruction_loss(x_real, f(x_real))
                    g_loss = g_loss + cfg.lambda_identity * terms["idt"]
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()

            # Update each discriminator on real images and on generated ones from its history.
            shown_y = pool_y.query(y_fake.detach(), rng)
            shown_x = pool_x.query(x_fake.detach(), rng)
            terms["D_y/adv"] = 0.5 * losses.d_adversarial_loss(kind, d_y(y_real), d_y(shown_y))
            terms["D_x/adv"] = 0.5 * losses.d_adversarial_loss(kind, d_x(x_real), d_x(shown_x))
            opt_d.zero_grad(set_to_none=True)
            (terms["D_y/adv"] + terms["D_x/adv"]).backward()
            opt_d.step()
            return {k: float(v.detach()) for k, v in terms.items()}

        return step
