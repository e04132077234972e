"""Load a model file and translate images to target domains.

Example:
    >>> import stargan
    >>> model = stargan.load("runs/synth-demo/model.safetensors")       # doctest: +SKIP
    >>> out = model.translate(x, {"Blond_Hair": 1}, source={"Male": 1})  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stargan.config import ModelConfig
from stargan.data.labels import LabelError, LabelLayout, sample_targets, set_target
from stargan.models import Generator, build_generator
from stargan.training import checkpoint as ckpt

Targets = Mapping[str, float]


@dataclass
class StarGAN:
    """A trained generator with the label names it was trained on."""

    generator: Generator
    config: ModelConfig
    layout: LabelLayout
    path: Path
    step: int | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def label_names(self) -> list[str]:
        return [n for s in self.layout.specs for n in s.names]

    def labels_for(self, targets: Targets, n: int, source: Targets | None = None) -> torch.Tensor:
        """The full label vectors [n, c_dim] that ask for ``targets``.

        All target names must come from one dataset (one mask bit). For a binary dataset the
        attributes not named keep their ``source`` values (absent when not given); a hair
        colour set on clears the other hair colours.
        """
        if not targets:
            raise LabelError(f"no target given; choose among: {', '.join(self.label_names)}")
        found = {name: self.layout.find(name) for name in list(targets) + list(source or {})}
        datasets = {found[name][0] for name in targets}
        if len(datasets) > 1:
            raise LabelError(
                f"targets {list(targets)} come from different datasets; translate to one "
                f"dataset's labels at a time"
            )
        (k,) = datasets
        spec = self.layout.specs[k]
        base = torch.zeros(n, spec.n_labels)
        for name, value in (source or {}).items():
            if found[name][0] == k:
                base[:, found[name][1]] = float(value)
        for name, value in targets.items():
            base = set_target(spec, base, name, float(value))
        return self.layout.embed(k, base)

    @torch.no_grad()
    def translate(
        self, images: torch.Tensor, targets: Targets, source: Targets | None = None
    ) -> torch.Tensor:
        """images [N, 3, S, S] in [-1, 1] -> translated [N, 3, S, S] in [-1, 1]."""
        c = self.labels_for(targets, images.shape[0], source).to(self.device)
        return self.generator(images.to(self.device), c).cpu()


def load(path: str | Path, device: str | torch.device = "cpu") -> StarGAN:
    """Load a model file written by training (``model.safetensors``) or ``stargan export``."""
    path = Path(path)
    tensors, meta = ckpt.load_tensors(path, ckpt.MODEL_FORMAT)
    try:
        config = ModelConfig(**json.loads(meta["model_config"]))
        layout = LabelLayout.from_dict(json.loads(meta["labels"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{path}: missing or malformed model metadata ({e})") from None
    if (layout.c_dim, layout.n_classes) != (config.c_dim, config.n_classes):
        raise ckpt.CheckpointError(
            f"{path}: its labels need c_dim={layout.c_dim}, n_classes={layout.n_classes} but "
            f"the model config says c_dim={config.c_dim}, n_classes={config.n_classes}"
        )
    generator = build_generator(config)
    ckpt.load_module_weights(generator, tensors, "G.", path)
    generator.to(device)
    step = int(meta["step"]) if "step" in meta else None
    return StarGAN(generator, config, layout, path, step)


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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(source: str | Path) -> list[Path]:
    """An image file, or the image files of a folder (sorted); nothing found is an error."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"input {source} is neither an image file nor a folder")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {source}"
        )
    return files


def target_title(targets: Targets) -> str:
    """{'Blond_Hair': 1, 'Male': 0} -> 'Blond_Hair+Male=0' (file names and grid titles)."""
    return "+".join(n if v == 1 else f"{n}={v:g}" for n, v in targets.items())


def translate_files(model_path: str | Path, source: str | Path, out_dir: str | Path,
                    targets: Sequence[Targets], *, source_labels: Targets | None = None,
                    grid: bool = False, device: str = "cpu") -> list[Path]:
    """Translate every image of ``source`` to every target; one PNG per image per target.

    With no targets, each label of the model's first dataset is a target (as in sample
    grids). Returns the written paths (``grid.png`` last when asked for).
    """
    from stargan.data.io import load_image, save_image

    model = load(model_path, device)
    files = list_images(source)
    if not targets:
        targets = [{name: 1.0} for name in model.layout.specs[0].names]
    x = torch.stack([load_image(f, model.config.image_size) for f in files])
    out_dir = Path(out_dir)
    written, columns = [], [x]
    for target in targets:
        y = model.translate(x, target, source_labels)
        columns.append(y)
        title = target_title(target)
        for f, image in zip(files, y, strict=True):
            written.append(save_image(image, out_dir / f"{f.stem}-{title}.png"))
    if grid:
        written.append(save_image(make_grid(torch.stack(columns, dim=1)), out_dir / "grid.png"))
    return written
