"""The folder format: one sub-folder per domain (RaFD and any custom single-label data).

::

    root/                       or      root/train/angry/...   root/test/angry/...
      angry/  001.jpg ...                    train/happy/...        test/happy/...
      happy/  ...

The class index is the position of the folder name in sorted order (as the official code and
torchvision's ImageFolder number them); ``selected_attrs`` keeps only the named classes, in
the order given. Images are found recursively inside each class folder by extension; hidden
files and folders (such as ``.stargan-cache``) are ignored. With ``train/`` and ``test/``
sub-folders those are the splits (the class list comes from ``train/``); otherwise
``test_size`` images are held out by a seeded shuffle.

Two registered names share this code: ``folder`` crops the largest centred square by default,
``rafd`` uses the official RaFD preprocessing (centre crop 256, then resize).

Example:
    >>> cfg = DataConfig(name="rafd", root="data/RaFD", test_size=0)
    >>> train = build_dataset(cfg, "train")                        # doctest: +SKIP
    >>> train.label_spec.names[:2]                                 # doctest: +SKIP
    ('angry', 'contemptuous')
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from stargan.config import DataConfig
from stargan.data.cache import ImageListDataset, Preprocessing, seeded_split
from stargan.data.io import IMAGE_EXTENSIONS
from stargan.data.labels import LabelSpec
from stargan.data.registry import DatasetError, Split, register_dataset

RAFD_CROP = 256


def _visible(name: str) -> bool:
    return not name.startswith(".")


def class_folders(root: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``root``."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))


class IgnoredFilesWarning(UserWarning):
    """Files in class folders that are not images by their extension (and so not used)."""


def list_images(folder: Path, ignored: list[Path] | None = None) -> list[Path]:
    """Image files under ``folder``, recursively, in sorted path order; the other visible
    files are appended to ``ignored`` when given."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        for f in filter(_visible, filenames):
            path = Path(dirpath) / f
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                found.append(path)
            elif ignored is not None:
                ignored.append(path)
    return sorted(found)


def scan_folder(
    root: str | Path, split: Split, selected: tuple[str, ...] = ()
) -> tuple[list[Path], list[int], list[str], bool]:
    """(image paths, class index per image, class names, has split folders) of ``root``.

    Raises DatasetError for a missing root, no class folders, unknown selected classes or a
    training class without images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: not a folder (the folder format needs one sub-folder per class)"
        )
    has_splits = (root / "train").is_dir() or (root / "test").is_dir()
    train_root = root / "train" if has_splits else root
    if has_splits and not train_root.is_dir():
        raise DatasetError(f"{root}: has a test/ folder but no train/ folder")
    classes = class_folders(train_root)
    if not classes:
        raise DatasetError(f"{train_root}: no class sub-folders (expected one folder per class)")
    if selected:
        unknown = [s for s in selected if s not in classes]
        if unknown:
            raise DatasetError(
                f"{train_root}: unknown class(es) {', '.join(unknown)}; "
                f"available: {', '.join(classes)}"
            )
        classes = list(selected)

    split_root = root / split if has_splits else root
    if not split_root.is_dir():
        raise DatasetError(f"{root}: has train/test folders but no {split}/ folder")
    if has_splits and split == "test":
        extra = sorted(set(class_folders(split_root)) - set(class_folders(train_root)))
        if extra:
            raise DatasetError(
                f"{split_root}: class folder(s) {', '.join(extra)} do not exist "
                f"in {train_root} (train and test must share the classes)"
            )
    files: list[Path] = []
    targets: list[int] = []
    ignored: list[Path] = []
    for k, name in enumerate(classes):
        images = list_images(split_root / name, ignored) if (split_root / name).is_dir() else []
        if not images and split_root == train_root:
            raise DatasetError(
                f"{split_root / name}: class folder has no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        files += images
        targets += [k] * len(images)
    if ignored:
        warnings.warn(
            IgnoredFilesWarning(
                f"{split_root}: {len(ignored)} file(s) not used, not images by their extension "
                f"(e.g. {ignored[0].relative_to(split_root)}); images end in "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
            ),
            stacklevel=2,
        )
    return files, targets, classes, has_splits


def _build(cfg: DataConfig, split: Split, default_crop: int | None) -> ImageListDataset:
    if cfg.root is None:
        raise DatasetError(f"the {cfg.name} format needs a root folder (--root)")
    files, targets, classes, has_splits = scan_folder(cfg.root, split, cfg.selected_attrs)
    if not has_splits:
        train, test = seeded_split(len(files), cfg.test_size, cfg.split_seed, where=cfg.root)
        index = train if split == "train" else test
        files, targets = [files[i] for i in index], [targets[i] for i in index]
    if not files:
        raise DatasetError(
            f"{cfg.root}: the {split} split is empty"
            + ("" if has_splits else f" (test_size={cfg.test_size})")
        )
    labels = np.zeros((len(files), len(classes)), np.float32)
    labels[np.arange(len(files)), targets] = 1.0
    return ImageListDataset(
        files,
        labels,
        LabelSpec(tuple(classes), "categorical"),
        prep=Preprocessing(cfg.image_size, cfg.crop_size or default_crop),
        bad_images=cfg.bad_images,
        cache=cfg.cache,
        cache_dir=cfg.cache_dir or (Path(cfg.root) / ".stargan-cache"),
        num_workers=cfg.num_workers,
        source=cfg.root,
    )


@register_dataset("folder")
def build_folder(cfg: DataConfig, split: Split) -> ImageListDataset:
    """One folder per class; crop = ``cfg.crop_size`` or the largest centred square."""
    return _build(cfg, split, default_crop=None)


@register_dataset("rafd")
def build_rafd(cfg: DataConfig, split: Split) -> ImageListDataset:
    """RaFD: the folder format with the official centre crop of 256 by default."""
    return _build(cfg, split, default_crop=RAFD_CROP)
