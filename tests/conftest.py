"""Shared fixtures: tiny seeded configs and an in-memory dataset that needs no renderer."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from stargan.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SpeedConfig,
    TrainConfig,
)
from stargan.data.labels import LabelSpec


class TensorFaces(torch.utils.data.Dataset):
    """Seeded random images with labels: enough to exercise every code path quickly."""

    def __init__(self, spec: LabelSpec, n: int = 32, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label_spec = spec
        self.images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        if spec.kind == "binary":
            self.labels = (torch.rand(n, spec.n_labels, generator=g) < 0.5).float()
        else:
            idx = torch.randint(spec.n_labels, (n,), generator=g)
            self.labels = torch.nn.functional.one_hot(idx, spec.n_labels).float()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


CELEBA_SPEC = LabelSpec(("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"), "binary")
RAFD_SPEC = LabelSpec(("angry", "happy", "neutral"), "categorical")


def tiny_config(out_dir, size: int = 16, iters: int = 6, n_data: int = 1, **run) -> TrainConfig:
    """A 16 px run of a few iterations; keyword arguments are RunConfig or SpeedConfig fields."""
    speed = {k: run.pop(k) for k in [f.name for f in dataclasses.fields(SpeedConfig)] if k in run}
    return TrainConfig(
        model=ModelConfig(
            image_size=size, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=3
        ),
        optim=OptimConfig(batch_size=4, num_iters=iters, num_iters_decay=iters // 2, n_critic=2),
        data=tuple(DataConfig(image_size=size) for _ in range(n_data)),
        run=RunConfig(out_dir=str(out_dir), log_every=1, sample_every=0, save_every=3, **run),
        speed=SpeedConfig(**speed),
    )


@pytest.fixture
def celeba_like() -> TensorFaces:
    return TensorFaces(CELEBA_SPEC)


@pytest.fixture
def rafd_like() -> TensorFaces:
    return TensorFaces(RAFD_SPEC, seed=1)
