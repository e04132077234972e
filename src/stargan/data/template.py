"""Template for a new dataset format: copy this file, rename the format, change ``parse``.

This example format is a plain tag list, ``tags.txt`` in the dataset folder::

    # filename   tags present on the image
    0001.png     smiling glasses
    0002.png
    0003.png     hat

Every tag that appears anywhere becomes a binary attribute (sorted by name). The steps are
the same for any format:

1. Parse the label file into image paths, a float label matrix [N, n] and the line number of
   each entry, collecting every problem in :class:`~stargan.data.cache.Problems` so the user
   sees all of them at once, each with its line.
2. Pick the split with :func:`~stargan.data.cache.seeded_split` (or the format's own).
3. Hand everything to :class:`~stargan.data.cache.ImageListDataset`, which validates images,
   applies the bad-image policy and the cache, and yields ``(image, label)``.
4. Register the builder with ``@register_dataset("name")`` and import the module in
   ``stargan/data/__init__.py`` so the name is known everywhere (CLI, configs, ``data check``).

This module is not imported by ``stargan.data`` (the template is not a user-facing format);
``tests/unit/test_datasets.py`` imports it and runs it end to end.

Example:
    >>> import stargan.data.template                               # registers "template"
    >>> ds = build_dataset(DataConfig(name="template", root="my_tags", test_size=1),
    ...                    "train")                                # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch

from stargan.config import DataConfig
from stargan.data.cache import ImageListDataset, Preprocessing, Problems, seeded_split
from stargan.data.labels import LabelSpec
from stargan.data.registry import DatasetError, Split, register_dataset
from stargan.files import MAX_TEXT_BYTES, UnsafeFileError, describe_error, read_text

LABEL_FILE = "tags.txt"


def parse(path: Path) -> tuple[list[str], list[set[str]], list[int]]:
    """(filenames, tags per image, line numbers) of a tag list; every problem is reported."""
    problems = Problems(path)
    filenames: list[str] = []
    tags: list[set[str]] = []
    lines: list[int] = []
    first_line: dict[str, int] = {}
    try:
        text = read_text(path, MAX_TEXT_BYTES, "tag list")
    except (OSError, UnsafeFileError) as e:
        raise DatasetError(f"{path}: cannot read the tag list ({describe_error(e)})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue  # blank or comment
        name = fields[0]
        if name in first_line:
            problems.add(lineno, f"duplicate filename {name!r} (first on line {first_line[name]})")
            continue
        first_line[name] = lineno
        filenames.append(name)
        tags.append(set(fields[1:]))
        lines.append(lineno)
    problems.raise_if_any()
    return filenames, tags, lines


@register_dataset("template")
def build_template(cfg: DataConfig, split: Split) -> ImageListDataset:
    """The ``split`` of a tag-list dataset at ``cfg.root``."""
    if cfg.root is None:
        raise DatasetError("the template format needs a root folder")
    label_file = Path(cfg.root) / LABEL_FILE
    if not label_file.is_file():
        raise DatasetError(f"{label_file}: not found (the template format reads {LABEL_FILE})")
    filenames, tags, lines = parse(label_file)

    # Labels: the selected tags, else every tag seen; unknown names list the valid ones.
    every = sorted(set().union(*tags))
    names = cfg.selected_attrs or tuple(every)
    unknown = [n for n in names if n not in every]
    if unknown:
        raise DatasetError(
            f"{label_file}: unknown tag(s) {', '.join(unknown)}; available: {', '.join(every)}"
        )
    labels = torch.tensor([[float(n in t) for n in names] for t in tags])

    train, test = seeded_split(len(filenames), cfg.test_size, cfg.split_seed, where=str(label_file))
    index = train if split == "train" else test
    if not index:
        raise DatasetError(f"{label_file}: the {split} split is empty (test_size={cfg.test_size})")
    return ImageListDataset(
        [Path(cfg.root) / filenames[i] for i in index],
        labels[index].reshape(len(index), len(names)),
        LabelSpec(tuple(names), "binary"),
        prep=Preprocessing(cfg.image_size, cfg.crop_size),
        bad_images=cfg.bad_images,
        cache=cfg.cache,
        cache_dir=cfg.cache_dir or Path(cfg.root) / ".stargan-cache",
        num_workers=cfg.num_workers,
        source=label_file,
        lines=[lines[i] for i in index],
    )
