"""Selective recomputation of G's training passes (speed.g_recompute): fewer activations kept
for backward, the same gradients bit for bit.

'norms' keeps the convolutions' outputs only (the first conv's excepted) and redoes instance
norms and ReLUs span by span, about half of G's activations; 'all' keeps G's input only and
redoes each pass's whole forward. Measured in docs/performance.md.
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import nn
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
    noop_context_fn,
)

import stargan.accel.winograd  # noqa: F401  (registers torch.ops.stargan.winograd_conv3x3)


def _keep_conv_outputs(
    first_conv: torch.Size, _ctx: object, op: object, *args: torch.Tensor, **_kwargs: object
) -> CheckpointPolicy:
    """Selective checkpointing policy: a convolution's output is kept, everything after it
    (instance norm, ReLU: memory-bound, cheap to redo) is recomputed in backward.

    The first conv (its weight shaped ``first_conv``) is redone too: it reads G's few input
    channels and writes one of its widest maps (64 MiB per pass at 128 px, batch 16) for about
    1 % of G's arithmetic."""
    if op is torch.ops.stargan.winograd_conv3x3.default:  # speed.winograd's residual convs
        return CheckpointPolicy.MUST_SAVE
    if op is torch.ops.aten.convolution.default and args[1].shape != first_conv:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def _spans(layers: list[nn.Module]) -> list[slice]:
    """The layers cut after each top-level conv but the first (one checkpoint per span).

    Each span but the first starts at a kept conv output and ends at the next, so it keeps no
    input of its own (the first keeps G's input). The residual blocks stay inside one span:
    cutting after each would keep their sums, which are recomputed now."""
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    bounds = [0, *(i + 1 for i in convs[1:] if i + 1 < len(layers)), len(layers)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


class RecomputedSequential(nn.Sequential):
    """G's ``main`` (the same layers, names and parameters) whose passes with autograd keep
    only what ``mode`` says; without autograd (sampling, evaluation) it is plain."""

    mode = "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none" or not torch.is_grad_enabled():
            return super().forward(x)
        # Non-reentrant: works under DDP (the recompute runs inside this module's backward,
        # not through DDP's forward again). G draws no random numbers: no RNG state is kept.
        redo = functools.partial(checkpoint, use_reentrant=False, preserve_rng_state=False)
        if self.mode == "all":
            return redo(super().forward, x, context_fn=noop_context_fn)
        layers = list(self)
        keep = functools.partial(
            create_selective_checkpoint_contexts,
            functools.partial(_keep_conv_outputs, layers[0].weight.shape),
        )
        # One checkpoint per span: backward rebuilds one span's norms and ReLUs at a time, not
        # all of G's at once as its backward begins (303 MiB less at the paper step's peak).
        for span in _spans(layers):
            x = redo(self[span], x, context_fn=keep)
        return x


def recompute(main: nn.Sequential, mode: str) -> None:
    """Make G's ``main`` recompute as ``mode`` says ('none', 'norms' or 'all'), in place."""
    main.__class__ = RecomputedSequential
    main.mode = mode
