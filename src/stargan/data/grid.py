"""Sample grids: rows of inputs and one column per target, as one uint8 picture. Training's
samples, `stargan sample`, `translate --grid`, the evaluation report and the web demo draw
them here, beside the image I/O they are written with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from stargan.data.labels import LabelLayout, sample_targets, set_target
from stargan.models import Generator


def domain_targets(
    layout: LabelLayout, k: int, labels: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """Every column of a sample grid for images of dataset k with labels [N, n_k]: each label
    of every dataset, as full vectors [N, c_dim]. Another dataset's labels start from zeros
    (unknown), so its binary attributes are set rather than flipped."""
    columns = []
    for j, spec in enumerate(layout.specs):
        if j == k:
            pairs = sample_targets(spec, labels)
        else:
            base = torch.zeros(labels.shape[0], spec.n_labels)
            pairs = [(name, set_target(spec, base, name)) for name in spec.names]
        columns += [(title, layout.embed(j, lab)) for title, lab in pairs]
    return columns


@torch.no_grad()
def sample_grid(
    generator: Generator,
    images: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    layout: LabelLayout,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Rows of input + one translation per target, for each dataset's images -> uint8 [H, W, 3]."""
    rows = []
    for k, (x, lab) in enumerate(zip(images, labels, strict=True)):
        x = x.to(device)
        cols = [x] + [generator(x, c.to(device)) for _, c in domain_targets(layout, k, lab)]
        rows.append(torch.stack(cols, dim=1))  # [N, columns, 3, S, S]
    return make_grid(torch.cat(rows).cpu())


def make_grid(images: torch.Tensor, pad: int = 2) -> np.ndarray:
    """[rows, cols, 3, S, S] in [-1, 1] -> one uint8 picture [H, W, 3] on a white ground."""
    r, c, _, h, w = images.shape
    out = np.full((r * (h + pad) + pad, c * (w + pad) + pad, 3), 255, np.uint8)
    pixels = to_uint8(images.reshape(r * c, 3, h, w)).reshape(r, c, h, w, 3)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = pixels[i, j]
    return out


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (rounded, clamped)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()
