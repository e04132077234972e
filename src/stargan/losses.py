"""StarGAN losses as pure functions of network outputs.

Each returns a scalar tensor; the trainer composes them with the configured weights and logs
every term by name. Shapes: patch logits [N, 1, h, w]; class logits and labels [N, n].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.data.labels import LabelKind


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
