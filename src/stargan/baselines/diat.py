"""DIAT (Li et al., "Deep Identity-Aware Transfer of Facial Attributes", 2016) as the paper's
baseline: one generator per direction, neutral -> each other expression.

Each model is a generator G_y and a discriminator D_y. D_y tells real faces showing y from
G_y's translations of neutral faces (adversarial loss, the original GAN's by default); G_y
also keeps the person: the StarGAN paper describes DIAT's regulariser as
||F(x) - F(G(x))||_1 with F a feature extractor pretrained on face recognition. Here F is an
identity classifier trained on SynthFaces' subjects (:mod:`stargan.baselines.identity`),
compared at the end of each of its stages, weighted by ``lambda_perceptual``. Each step
updates D_y first, then G_y through the updated D_y.

Seven directions make the paper's "52.6M x 7"; our G and D are StarGAN's without labels
(:mod:`stargan.baselines.networks`): 53.1M per G + D at 128 px. The fixed feature
extractor is not counted, as the paper does not count DIAT's face-recognition network.
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
from stargan.baselines.identity import IdentityFeatures, train_identity_classifier
from stargan.baselines.networks import PairwiseBaseline
from stargan.data.labels import LabelSpec
from stargan.evaluation.classifier import Judge


@register_baseline
class DIAT(PairwiseBaseline):
    """Per expression y: ``directions[y]`` holds G (neutral -> y) and D (real y vs G's).

    Example:
        >>> cfg = BaselineConfig.synth("diat", 16, conv_dim=8, g_repeat_num=1)
        >>> model = DIAT(cfg, LabelSpec(("happy", "neutral"), "categorical"))
        >>> model.num_parameters()[1]
        1
    """

    method = "diat"

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__(cfg, spec)
        self.directions = nn.ModuleDict(
            {
                y: nn.ModuleDict({"G": self.generator(), "D": self.discriminator()})
                for y in self.targets
            }
        )
        # Held in a list so that it is no submodule: not saved, not counted, never trained.
        self._identity: list[Judge] = []

    def units(self) -> list[nn.Module]:
        return list(self.directions.values())

    @property
    def identity_net(self) -> Judge | None:
        """The identity classifier whose features the training compares (None before)."""
        return self._identity[0] if self._identity else None

    def attach_identity_net(self, judge: Judge) -> None:
        """Use ``judge`` (e.g. loaded with ``load_judge``) instead of training one."""
        if judge.cfg.image_size != self.cfg.image_size:
            raise BaselineError(
                f"the identity network classifies {judge.cfg.image_size} px images, this DIAT "
                f"works on {self.cfg.image_size} px"
            )
        self._identity[:] = [judge]

    def translate(
        self, x: torch.Tensor, source_label: str | Sequence[str], target_name: str
    ) -> torch.Tensor:
        """neutral -> y with G_y (neutral -> neutral is the input itself)."""
        source = one_source(source_label, self.spec)
        self.spec.index(target_name)
        if source != self.cfg.neutral:
            raise BaselineError(
                f"DIAT learned {self.cfg.neutral} -> each expression only; got {source} inputs"
            )
        if target_name == source:
            return x.clone()
        with evaluating(self):
            return self.directions[target_name]["G"](x)

    def prepare(self, data: ExpressionData, device: torch.device) -> None:
        """Train the identity classifier on the training faces unless one is attached."""
        if self.identity_net is None:
            judge = train_identity_classifier(
                data.dataset,
                width=self.cfg.identity_width,
                epochs=self.cfg.identity_epochs,
                seed=self.cfg.seed,
                device=device,
            )
            self._identity[:] = [judge]
        self.info["identity_net"] = self._identity[0].info

    def stage_names(self) -> list[str]:
        return [f"{self.cfg.neutral}->{y}" for y in self.targets]

    def build_stage(
        self, k: int, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> Stage:
        """The direction neutral -> ``targets[k]``: D first, then G through the updated D."""
        if self.identity_net is None:
            raise BaselineError("DIAT needs its identity network: call prepare() first")
        features = IdentityFeatures(self.identity_net.to(device))
        cfg, kind, y = self.cfg, self.cfg.resolved_adversarial, self.targets[k]
        g, d = self.directions[y]["G"], self.directions[y]["D"]
        opt_g, opt_d = adam([g], cfg), adam([d], cfg)
        self.directions[y].train()

        def step(it: int) -> dict[str, float]:
            x_real, y_real = self.pair_batches(y, data, rng, device)

            # Update D on real y faces and on translated neutral faces.
            y_fake = g(x_real)
            terms = {"D/adv": losses.d_adversarial_loss(kind, d(y_real), d(y_fake.detach()))}
            update(opt_d, terms["D/adv"])

            # Update G through the updated D, keeping the identity features of its input.
            with frozen(d):
                terms["G/adv"] = losses.g_adversarial_loss(kind, d(y_fake))
                terms["G/identity"] = features.distance(x_real, y_fake)
                update(opt_g, terms["G/adv"] + cfg.lambda_perceptual * terms["G/identity"])
            return floats(terms)

        return Stage(self.stage_names()[k], step, {"G": opt_g, "D": opt_d})
