"""The official 2018 StarGAN training step, rebuilt on our models and loss functions: the
reference that tests/unit/test_official_step_parity.py holds our Trainer's step to, and the
baseline of benchmarks/train_speed.py (``--mode reference``). Kept for tests; not used by the
library.

What makes it the release's step structure (solver.py, train()), against our Trainer.train_step:

- D update: G(x, c_trg) runs with autograd on (its graph is kept although D's loss only
  sees ``x_fake.detach()``); D runs three separate forwards, on real, fake and interpolated
  images (ours: one forward on real + fake concatenated, G's graph kept only when G updates).
- G update: G(x, c_trg) is recomputed from scratch (ours reuses the D step's translation, as
  G has not changed since); D's weights keep requires_grad, so the backward also computes
  gradients for D that are thrown away (ours switches them off).
- Both optimisers' gradients are reset before each backward; every loss term is read back
  with ``.item()`` for logging. No finite check of the gradients (ours computes their norm).
- Adam is the per-tensor loop (ours is fused: the same update), and with speed.cpu_kernels off
  (``SPEED_PROFILES["plain"]``) G and D compute with torch's own kernels, as the release did.

The random draws (flips, target labels, interpolation weights) are made exactly as ours makes
them, from the trainer's generator and in the same order, so with the same seed both steps
see the same numbers and their losses agree to float rounding.
"""

from __future__ import annotations

import dataclasses
import types

import torch

from stargan import losses
from stargan.accel import Precision
from stargan.config import SPEED_PROFILES
from stargan.data.labels import permute_targets
from stargan.training.trainer import Trainer


def reference_train_step(
    trainer: Trainer,
    k: int,
    x_real: torch.Tensor,
    label_org: torch.Tensor,
    update_g: bool,
    flip: bool = False,
) -> dict[str, float]:
    """A D update on dataset k's batch, then a G update if ``update_g``: the release's way.
    Single process only (the release had no data parallelism)."""
    lc, G, D = trainer.cfg.loss, trainer.G, trainer.D
    if trainer.cfg.speed.precision == "bf16":  # the run's precision, as our step computes
        G, D = Precision(G), Precision(D)
    spec, part = trainer.layout.specs[k], trainer.layout.slice(k)
    n = x_real.shape[0]
    if flip:
        flips = torch.rand(n, generator=trainer.rng) < 0.5
        x_real = torch.where(flips[:, None, None, None], x_real.flip(3), x_real)
    label_trg = permute_targets(label_org, trainer.rng)
    alpha = torch.rand(n, generator=trainer.rng)
    x_real = x_real.to(trainer.device)
    label_org, label_trg = label_org.to(trainer.device), label_trg.to(trainer.device)
    c_org, c_trg = trainer.layout.embed(k, label_org), trainer.layout.embed(k, label_trg)

    def reset_grad() -> None:
        trainer.opt_g.zero_grad(set_to_none=True)
        trainer.opt_d.zero_grad(set_to_none=True)

    # Train D: real images, then fakes (G's graph built and kept), then interpolates.
    src_real, cls_real = D(x_real)
    x_fake = G(x_real, c_trg)
    src_fake, _ = D(x_fake.detach())
    terms = {
        "D/adv": losses.d_adversarial_loss(lc.adversarial, src_real, src_fake),
        "D/cls": losses.classification_loss(spec.kind, cls_real[:, part], label_org),
    }
    d_loss = terms["D/adv"] + lc.lambda_cls * terms["D/cls"]
    if lc.adversarial == "wgan-gp":
        x_hat = losses.interpolate(x_real, x_fake, alpha.to(trainer.device))
        terms["D/gp"] = losses.gradient_penalty(D(x_hat)[0], x_hat)
        d_loss = d_loss + lc.lambda_gp * terms["D/gp"]
    terms["D/loss"] = d_loss
    reset_grad()
    d_loss.backward()
    trainer.opt_d.step()
    metrics = {name: v.item() for name, v in terms.items()}
    if not update_g:
        return metrics

    # Train G: translate again, through D (whose weights still take gradients), and back.
    x_fake = G(x_real, c_trg)
    src_fake, cls_fake = D(x_fake)
    x_rec = G(x_fake, c_org)
    terms = {
        "G/adv": losses.g_adversarial_loss(lc.adversarial, src_fake),
        "G/cls": losses.classification_loss(spec.kind, cls_fake[:, part], label_trg),
        "G/rec": losses.reconstruction_loss(x_real, x_rec),
    }
    g_loss = terms["G/adv"] + lc.lambda_cls * terms["G/cls"] + lc.lambda_rec * terms["G/rec"]
    if lc.lambda_id:  # not in the release; kept so that such configs compare like for like
        terms["G/id"] = losses.reconstruction_loss(x_real, G(x_real, c_org))
        g_loss = g_loss + lc.lambda_id * terms["G/id"]
    terms["G/loss"] = g_loss
    reset_grad()
    g_loss.backward()
    trainer.opt_g.step()
    metrics.update({name: v.item() for name, v in terms.items()})
    return metrics


def as_reference(trainer: Trainer) -> Trainer:
    """``trainer`` (single process, built with ``SPEED_PROFILES["plain"]``, any precision)
    made to train as the release: its train_step the reference step, its optimisers the
    per-tensor Adam loop. Returns it."""
    plain = dataclasses.replace(trainer.cfg.speed, precision="fp32")
    if plain != SPEED_PROFILES["plain"] or trainer.dist.active:
        raise ValueError(
            f"the reference step runs single-process with torch's own kernels and nothing else "
            f"of speed but its precision, not {trainer.cfg.speed}"
        )
    trainer.train_step = types.MethodType(reference_train_step, trainer)
    o = trainer.cfg.optim
    trainer.opt_g = torch.optim.Adam(
        trainer.G.parameters(), o.g_lr, (o.beta1, o.beta2), foreach=False
    )
    trainer.opt_d = torch.optim.Adam(
        trainer.D.parameters(), o.d_lr, (o.beta1, o.beta2), foreach=False
    )
    return trainer


def copy_state(src: Trainer, dst: Trainer) -> None:
    """``dst`` takes ``src``'s weights, Adam state and random generator (their data streams
    already move in step), so that the next step of each starts from the same point."""
    dst.G.load_state_dict(src.G.state_dict())
    dst.D.load_state_dict(src.D.state_dict())
    for opt_src, opt_dst in ((src.opt_g, dst.opt_g), (src.opt_d, dst.opt_d)):
        params = zip(
            opt_src.param_groups[0]["params"], opt_dst.param_groups[0]["params"], strict=True
        )
        for p_src, p_dst in params:
            # State tensors only: the param groups say fused or per-tensor, which stays.
            opt_dst.state[p_dst] = {k: v.clone() for k, v in opt_src.state[p_src].items()}
    dst.rng.set_state(src.rng.get_state())
