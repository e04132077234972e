"""Datasets: the image decoder, label spaces, the format registry and the formats themselves."""

from stargan.data.registry import DatasetError, build_dataset, dataset_names, register_dataset

__all__ = ["DatasetError", "build_dataset", "dataset_names", "register_dataset"]
