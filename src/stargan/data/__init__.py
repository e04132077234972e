"""Datasets: the image decoder, label spaces, the format registry and the formats themselves."""

from stargan.data.registry import DatasetError, build_dataset, dataset_names, register_dataset

# Format modules register themselves on import ("celeba"; "folder" and "rafd"; "table";
# "synthfaces-celeba" and "synthfaces-rafd").
from stargan.data import celeba, folder, synthfaces, table  # noqa: F401  isort: skip

__all__ = ["DatasetError", "build_dataset", "dataset_names", "register_dataset"]
