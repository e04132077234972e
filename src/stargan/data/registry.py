"""Registry of dataset formats: a name in the config maps to a builder function.

A builder takes the dataset's :class:`~stargan.config.DataConfig` and a split name and returns
a ``torch.utils.data.Dataset`` that yields ``(image [3, S, S] float in [-1, 1], label [n]
float)`` and has a ``label_spec`` attribute. Images come unflipped: the trainer applies the
random flip itself so that augmentation is part of its seeded, checkpointed random state.

Example:
    >>> @register_dataset("my-format")
    ... def build_my_format(cfg, split):
    ...     ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from stargan.config import DataConfig
from stargan.data.labels import LabelSpec

if TYPE_CHECKING:
    import torch

Split = Literal["train", "test"]


class LabelledDataset(Protocol):
    """What every registered builder returns."""

    label_spec: LabelSpec

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]: ...


class DatasetError(ValueError):
    """A dataset that cannot be used as given: the message names the file, line and value."""


Builder = Callable[[DataConfig, Split], LabelledDataset]
_BUILDERS: dict[str, Builder] = {}


def register_dataset(name: str) -> Callable[[Builder], Builder]:
    """Decorator adding a dataset format under ``name`` (names are unique)."""

    def add(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"dataset format {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return add


def dataset_names() -> list[str]:
    return sorted(_BUILDERS)


def build_dataset(cfg: DataConfig, split: Split) -> LabelledDataset:
    """The ``split`` of the dataset ``cfg`` describes; an unknown format lists the known ones."""
    if cfg.name not in _BUILDERS:
        raise DatasetError(
            f"unknown dataset format {cfg.name!r}; registered formats: {', '.join(dataset_names())}"
        )
    dataset = _BUILDERS[cfg.name](cfg, split)
    if len(dataset) == 0:
        raise DatasetError(f"the {split} split of dataset {cfg.name!r} (root={cfg.root}) is empty")
    return dataset
