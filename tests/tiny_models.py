"""Tiny seeded model files for the translation, web and browser tests (no training needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import CELEBA_SPEC, RAFD_SPEC
from stargan import checkpoint as ckpt
from stargan.config import ModelConfig
from stargan.data.labels import LabelLayout
from stargan.models import build_discriminator, build_generator


def tiny_model_file(
    path: Path, *, size: int = 16, joint: bool = False, with_d: bool = True, seed: int = 0
) -> Path:
    """A random 8-channel model file (G, and D unless ``with_d`` is False)."""
    layout = LabelLayout((CELEBA_SPEC, RAFD_SPEC) if joint else (CELEBA_SPEC,))
    cfg = ModelConfig(
        image_size=size,
        c_dim=layout.c_dim,
        n_classes=layout.n_classes,
        g_conv_dim=8,
        d_conv_dim=8,
        g_repeat_num=1,
        d_repeat_num=3,
    )
    torch.manual_seed(seed)
    g, d = build_generator(cfg), build_discriminator(cfg)
    ckpt.save_model_file(path, g, cfg, layout, step=5, discriminator=d if with_d else None)
    return path
