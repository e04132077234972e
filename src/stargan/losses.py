"""StarGAN's objectives (paper section 3.1, eqs. 1-7) as pure functions.

:func:`discriminator_loss` and :func:`generator_loss` compose the terms below with the configured
weights and return ``(loss, terms)``: the scalar to back-propagate and every term by name (the
trainer logs them). Shapes: images [N, 3, S, S]; patch logits [N, 1, h, w]; class logits and
labels [N, n]; label vectors for G [N, c_dim].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from stargan.config import LossConfig
from stargan.data.labels import LabelKind

Net = Callable[..., Any]


def d_adversarial_loss(
    kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """D's adversarial loss on real and fake patch logits (without the gradient penalty).

    wgan-gp: -E[D(x)] + E[D(G(x,c))]; bce: the original log-likelihood GAN;
    lsgan: least squares with targets 1 (real) and 0 (fake).
    """
    if kind == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    if kind == "lsgan":
        return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: 'wgan-gp', 'bce', 'lsgan'")


def g_adversarial_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial loss on the patch logits of its translations.

    bce uses the non-saturating form -log D(G(x,c)), as GAN practice and the seed texts do.
    """
    if kind == "wgan-gp":
        return -fake_logits.mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "lsgan":
        return ((fake_logits - 1) ** 2).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: 'wgan-gp', 'bce', 'lsgan'")


def gradient_penalty(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """mean_n (||d sum(outputs_n) / d inputs_n||_2 - 1)^2 with the graph kept for D's update.

    ``inputs`` are the interpolates x_hat (requires_grad) and ``outputs`` D's patch logits on
    them; the norm runs over every pixel of each sample. D must have no layer that mixes
    samples, or the per-sample gradient would not be that sample's own.
    """
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x_hat = a x + (1 - a) G(x, c), a per sample ([N] in [0, 1]); returned as a grad leaf."""
    a = alpha.to(real.dtype).view(-1, 1, 1, 1)
    return (a * real + (1 - a) * fake.detach()).requires_grad_(True)


def classification_loss(
    kind: LabelKind, logits: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Domain classification loss.

    binary: BCE with logits summed over labels and divided by the batch size (the official
    normalisation; it weighs each attribute as much as one categorical decision).
    categorical: cross-entropy against the one-hot target's class.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {list(logits.shape)} and labels {list(target.shape)} differ")
    if kind == "binary":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]
    if kind == "categorical":
        return F.cross_entropy(logits, target.argmax(dim=1))
    raise ValueError(f"unknown label kind {kind!r}; valid: 'binary', 'categorical'")


def reconstruction_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """L1 cycle loss ||x - G(G(x, c), c')||_1, averaged over every element."""
    return (x - x_rec).abs().mean()


def discriminator_loss(
    D: Net,
    x_real: torch.Tensor,
    x_fake: torch.Tensor,
    label_org: torch.Tensor,
    alpha: torch.Tensor,
    *,
    kind: LabelKind,
    part: slice,
    cfg: LossConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = L_adv + lambda_cls L_cls^r (eq. 6), with WGAN-GP's gradient penalty (eq. 8).

    D sees the real and the translated images in one batch (it has no layer that mixes
    samples); ``part`` is this dataset's slice of D's classifier, ``alpha`` [N] the
    interpolation weights of the penalty."""
    n = x_real.shape[0]
    src, cls = D(torch.cat([x_real, x_fake.detach()]))
    terms = {
        "D/adv": d_adversarial_loss(cfg.adversarial, src[:n], src[n:]),
        "D/cls": classification_loss(kind, cls[:n, part], label_org),
    }
    loss = terms["D/adv"] + cfg.lambda_cls * terms["D/cls"]
    if cfg.adversarial == "wgan-gp":
        x_hat = interpolate(x_real, x_fake, alpha)
        terms["D/gp"] = gradient_penalty(D(x_hat)[0], x_hat)
        loss = loss + cfg.lambda_gp * terms["D/gp"]
    terms["D/loss"] = loss
    return loss, terms


def generator_loss(
    G: Net,
    D: Net,
    x_real: torch.Tensor,
    x_fake: torch.Tensor,
    c_org: torch.Tensor,
    label_trg: torch.Tensor,
    *,
    kind: LabelKind,
    part: slice,
    cfg: LossConfig,
    attention: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec (eq. 7), for the translation
    ``x_fake`` = G(x_real, c_trg) made for D's update (G has not changed since).

    Our options add lambda_mask times the mean of G's attention mask (``attention``, when
    g_output is 'mask') and lambda_id times the identity loss ||G(x, c_org) - x||_1."""
    src_fake, cls_fake = D(x_fake)
    terms = {
        "G/adv": g_adversarial_loss(cfg.adversarial, src_fake),
        "G/cls": classification_loss(kind, cls_fake[:, part], label_trg),
        "G/rec": reconstruction_loss(x_real, G(x_fake, c_org)),
    }
    loss = terms["G/adv"] + cfg.lambda_cls * terms["G/cls"] + cfg.lambda_rec * terms["G/rec"]
    if attention is not None:
        terms["G/mask"] = attention.mean()
        loss = loss + cfg.lambda_mask * terms["G/mask"]
    if cfg.lambda_id:
        terms["G/id"] = reconstruction_loss(x_real, G(x_real, c_org))
        loss = loss + cfg.lambda_id * terms["G/id"]
    terms["G/loss"] = loss
    return loss, terms
