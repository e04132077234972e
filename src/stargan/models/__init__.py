"""StarGAN networks and helpers to build and measure them from a ModelConfig."""

from __future__ import annotations

from torch import nn

from stargan.config import ModelConfig
from stargan.models.discriminator import Discriminator
from stargan.models.generator import Generator

__all__ = [
    "Discriminator",
    "Generator",
    "build_discriminator",
    "build_generator",
    "count_parameters",
]


def build_generator(cfg: ModelConfig) -> Generator:
    return Generator(cfg)


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    return Discriminator(cfg)


def count_parameters(module: nn.Module) -> int:
    """Learned parameters only (buffers excluded), as REFERENCE.md counts them."""
    return sum(p.numel() for p in module.parameters())
