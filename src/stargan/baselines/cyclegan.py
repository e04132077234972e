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

from collections.abc import Sequence

import torch
from torch import nn

from stargan import losses
from stargan.baselines.common import (
    BaselineConfig,
    BaselineError,
    ExpressionData,
    Stage,
    adam,
    evaluating,
    floats,
    frozen,
    one_source,
    register_baseline,
    update,
)
from stargan.baselines.networks import PairwiseBaseline
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

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The stored images, [n, 3, S, S] in their order (nothing while empty)."""
        return {"images": torch.stack(self.images)} if self.images else {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        images = tensors.get("images")
        self.images = [] if images is None else list(images.to(device).unbind(0))


@register_baseline
class CycleGAN(PairwiseBaseline):
    """Per expression y: ``pairs[y]`` holds G (neutral -> y), F (y -> neutral), D_y, D_x.

    Example:
        >>> cfg = BaselineConfig.synth("cyclegan", 16, conv_dim=8, g_repeat_num=1)
        >>> model = CycleGAN(cfg, LabelSpec(("happy", "neutral"), "categorical"))
        >>> model.translate(torch.zeros(2, 3, 16, 16), "happy", "neutral").shape  # F_happy
        torch.Size([2, 3, 16, 16])
    """

    method = "cyclegan"

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__(cfg, spec)
        self.pairs = nn.ModuleDict(
            {
                y: nn.ModuleDict(
                    {
                        "G": self.generator(),
                        "F": self.generator(),
                        "D_y": self.discriminator(),
                        "D_x": self.discriminator(),
                    }
                )
                for y in self.targets
            }
        )

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

    def stage_names(self) -> list[str]:
        return [f"{self.cfg.neutral}<->{y}" for y in self.targets]

    def build_stage(
        self, k: int, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> Stage:
        """The pair neutral <-> ``targets[k]``: both generators, then both discriminators."""
        cfg, kind, y = self.cfg, self.cfg.resolved_adversarial, self.targets[k]
        pair = self.pairs[y]
        g, f, d_y, d_x = pair["G"], pair["F"], pair["D_y"], pair["D_x"]
        opt_g, opt_d = adam([g, f], cfg), adam([d_y, d_x], cfg)
        pool_y, pool_x = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        pair.train()

        def step(it: int) -> dict[str, float]:
            x_real, y_real = self.pair_batches(y, data, rng, device)

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
                update(opt_g, g_loss)

            # Update each discriminator on real images and on generated ones from its history.
            shown_y = pool_y.query(y_fake.detach(), rng)
            shown_x = pool_x.query(x_fake.detach(), rng)
            terms["D_y/adv"] = 0.5 * losses.d_adversarial_loss(kind, d_y(y_real), d_y(shown_y))
            terms["D_x/adv"] = 0.5 * losses.d_adversarial_loss(kind, d_x(x_real), d_x(shown_x))
            update(opt_d, terms["D_y/adv"] + terms["D_x/adv"])
            return floats(terms)

        name = self.stage_names()[k]
        return Stage(name, step, {"G": opt_g, "D": opt_d}, {"pool_y": pool_y, "pool_x": pool_x})
