"""Sample grids: rows of inputs and one column per target, as one uint8 picture. Training's
samples, `stargan sample`, `translate --grid`, the evaluation report and the web demo draw
them here, beside the image I/O they are written with. Grids drawn for people (training's
samples, `stargan sample`) carry a strip of column titles; the rest stay bare."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

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
    titled: bool = False,
) -> np.ndarray:
    """Rows of input + one translation per target, for each dataset's images -> uint8 [H, W, 3].
    ``titled`` adds a strip of column titles above: "input", then each target's name."""
    rows = []
    for k, (x, lab) in enumerate(zip(images, labels, strict=True)):
        x = x.to(device)
        cols = [x] + [generator(x, c.to(device)) for _, c in domain_targets(layout, k, lab)]
        rows.append(torch.stack(cols, dim=1))  # [N, columns, 3, S, S]
    # Every dataset's rows share the columns: each label of every dataset, in layout order.
    titles = ["input"] + [t for t, _ in domain_targets(layout, 0, labels[0])] if titled else None
    return make_grid(torch.cat(rows).cpu(), titles=titles)


def spread_indices(dataset: object, n: int, scan: int = 4096) -> list[int]:
    """``n`` item indices spread over the labels, for grids that show every class rather than
    the first class in sorted order: round-robin over the distinct label vectors (in order of
    first appearance) among the first ``scan`` items, read until ``n`` labels are seen.
    Deterministic; reads stored labels (``.labels`` [N, n] or ``.label(i)``) where the
    dataset has them, so nothing is decoded.

    Example:
        >>> class Two:
        ...     labels = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)
        ...     def __len__(self):
        ...         return 8
        >>> spread_indices(Two(), 4)
        [0, 4, 1, 5]
    """
    total = min(len(dataset), scan)  # type: ignore[arg-type]
    stored = getattr(dataset, "labels", None)

    def label(i: int) -> torch.Tensor:
        if isinstance(stored, torch.Tensor):
            return stored[i]
        if callable(getattr(dataset, "label", None)):
            return dataset.label(i)  # type: ignore[attr-defined]
        return dataset[i][1]  # type: ignore[index]

    groups: dict[tuple[float, ...], list[int]] = {}
    for i in range(total):
        groups.setdefault(tuple(label(i).flatten().tolist()), []).append(i)
        if len(groups) >= n:  # one image from each of n labels: enough, stop reading
            break
    picked: list[int] = []
    for rank in range(max((len(g) for g in groups.values()), default=0)):
        picked += [g[rank] for g in groups.values() if rank < len(g)]
    return picked[:n]


def make_grid(
    images: torch.Tensor,
    pad: int = 2,
    titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
) -> np.ndarray:
    """[rows, cols, 3, S, S] in [-1, 1] -> one uint8 picture [H, W, 3] on a white ground.
    ``titles`` (one per column) adds a title strip above the grid, ``row_titles`` (one per
    row) a strip of row names on its left; without them, the grid is bare."""
    r, c, _, h, w = images.shape
    out = np.full((r * (h + pad) + pad, c * (w + pad) + pad, 3), 255, np.uint8)
    pixels = to_uint8(images.reshape(r * c, 3, h, w)).reshape(r, c, h, w, 3)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = pixels[i, j]
    if row_titles is not None:
        if len(row_titles) != r:
            raise ValueError(f"make_grid: {len(row_titles)} row titles for {r} rows")
        out = np.concatenate([row_strip(row_titles, h, pad), out], axis=1)
    if titles is None:
        return out
    if len(titles) != c:
        raise ValueError(f"make_grid: {len(titles)} titles for {c} columns")
    top = title_strip(titles, w, pad)
    margin = np.full((top.shape[0], out.shape[1] - top.shape[1], 3), 255, np.uint8)
    return np.concatenate([np.concatenate([margin, top], axis=1), out])


def row_strip(titles: Sequence[str], height: int, pad: int = 2) -> np.ndarray:
    """Row names in PIL's default font, each centred on its row of ``height`` px with ``pad``
    px gaps -> uint8 [H, W, 3], as wide as the longest name."""
    font = ImageFont.load_default()
    boxes = [font.getbbox(t) for t in titles]
    width = max(b[2] - b[0] for b in boxes) + 2 * pad
    strip = Image.new("RGB", (width, len(titles) * (height + pad) + pad), "white")
    for i, (t, b) in enumerate(zip(titles, boxes, strict=True)):
        y = pad + i * (height + pad) + (height - (b[3] - b[1])) // 2 - b[1]
        ImageDraw.Draw(strip).text((pad, y), t, fill="black", font=font)
    return np.asarray(strip, dtype=np.uint8)


def title_strip(titles: Sequence[str], width: int, pad: int = 2) -> np.ndarray:
    """Column titles in PIL's default font over columns of ``width`` px with ``pad`` px gaps ->
    uint8 [H, W, 3]. Titles wider than a column are written upwards (rotated a quarter turn),
    so small images (16-32 px) still get readable titles."""
    font = ImageFont.load_default()
    boxes = [font.getbbox(t) for t in titles]
    widths = [b[2] - b[0] for b in boxes]
    line = max(b[3] for b in boxes) + 2
    upright = max(widths) <= width
    height = line + pad if upright else max(widths) + 2 * pad
    strip = Image.new("RGB", (len(titles) * (width + pad) + pad, height), "white")
    for j, (t, tw) in enumerate(zip(titles, widths, strict=True)):
        x = pad + j * (width + pad)
        if upright:
            ImageDraw.Draw(strip).text((x + (width - tw) // 2, 1), t, fill="black", font=font)
            continue
        label = Image.new("RGB", (tw, line), "white")
        ImageDraw.Draw(label).text((0, 0), t, fill="black", font=font)
        label = label.rotate(90, expand=True)  # reads bottom to top, ends at the images
        top = max(height - pad - label.height, 0)
        strip.paste(label, (x + max((width - label.width) // 2, 0), top))
    return np.asarray(strip, dtype=np.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (rounded, clamped)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()
