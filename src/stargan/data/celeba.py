"""The CelebA format: ``list_attr_celeba.txt`` and a folder of aligned face images.

The attribute file, exactly as the official release ships it::

    202599
    5_o_Clock_Shadow Arched_Eyebrows Attractive ... Young
    000001.jpg -1  1  1 -1 ...  1
    000002.jpg -1 -1 -1  1 ...  1

Line 1 is the image count, line 2 the attribute names, then one image per line with values
1 / -1 separated by runs of spaces (the real file pads single digits with a second space).
0 is read as "absent" too, so 0/1 files work. The file may sit in ``root`` or in
``root/Anno``; images in ``root/images``, ``root/img_align_celeba`` or ``root`` itself.

Preprocessing: centre crop 178, resize to ``image_size``, scale to [-1, 1] (the trainer
flips). The test split holds out ``test_size`` images by a seeded shuffle; with
``official_split=True`` it is the official release's split exactly (1,999 test images at the
defaults test_size=2000, split_seed=1234).

Example:
    >>> cfg = DataConfig(name="celeba", root="data/celeba", selected_attrs=("Male", "Young"))
    >>> train = build_dataset(cfg, "train")                        # doctest: +SKIP
    >>> image, label = train[0]        # [3, 128, 128], tensor([1., 0.])  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stargan.config import DataConfig
from stargan.data.cache import (
    BinaryRows,
    ImageListDataset,
    Preprocessing,
    Problems,
    find_image_dir,
    seeded_split,
)
from stargan.data.labels import LabelSpec
from stargan.data.registry import DatasetError, Split, register_dataset
from stargan.files import MAX_TEXT_BYTES, UnsafeFileError, describe_error, read_text

ATTR_FILE = "list_attr_celeba.txt"
DEFAULT_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
DEFAULT_CROP = 178
IMAGE_DIRS = ("images", "img_align_celeba", "Img/img_align_celeba", "")
_TRUE, _FALSE = frozenset({"1"}), frozenset({"-1", "0"})


@dataclass(frozen=True)
class AttributeFile:
    """A parsed attribute file: every entry in file order."""

    path: Path
    names: tuple[str, ...]
    """All attribute names of line 2."""
    filenames: list[str]
    values: np.ndarray
    """float32 [N, len(names)], 1 = present, 0 = absent."""
    lines: list[int]
    """1-based line number of each entry."""


def find_attr_file(root: str | Path) -> Path:
    """``root`` if it is the file, else ``root/list_attr_celeba.txt`` or ``root/Anno/...``."""
    root = Path(root)
    if root.is_file():
        return root
    candidates = [root / ATTR_FILE, root / "Anno" / ATTR_FILE]
    for c in candidates:
        if c.is_file():
            return c
    raise DatasetError(
        f"no CelebA attribute file: looked for {' and '.join(str(c) for c in candidates)}"
    )


def parse_attr_file(path: str | Path) -> AttributeFile:
    """Read a CelebA-format attribute file, reporting every problem with its line number.

    Example:
        >>> parse_attr_file("data/celeba/list_attr_celeba.txt").names[:2]  # doctest: +SKIP
        ('5_o_Clock_Shadow', 'Arched_Eyebrows')
    """
    path = Path(path)
    try:
        text = read_text(path, MAX_TEXT_BYTES, "attribute file")  # a byte-order mark is harmless
    except (OSError, UnsafeFileError) as e:
        raise DatasetError(
            f"{path}: cannot read the attribute file ({describe_error(e)})"
        ) from None
    raw = text.splitlines()
    if len(raw) < 2:
        raise DatasetError(
            f"{path}: expected an image count on line 1 and attribute names on line 2, "
            f"the file has {len(raw)} line(s)"
        )
    problems = Problems(path)
    try:
        declared: int | None = int(raw[0].strip())
    except ValueError:
        declared = None
        problems.add(1, f"expected the image count, got {raw[0].strip()!r}")
    names = tuple(raw[1].split())
    if not names:
        raise DatasetError(f"{path}:2: expected attribute names, the line is empty")
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        problems.add(2, f"duplicate attribute names {dupes}")

    rows = BinaryRows(problems, _TRUE, _FALSE, "1 or -1")
    for lineno, line in enumerate(raw[2:], start=3):
        fields = line.split()
        if not fields:
            continue  # blank lines, such as a trailing one, are not entries
        filename, values = fields[0], fields[1:]
        if len(values) != len(names):
            problems.add(lineno, f"{filename}: {len(values)} values for {len(names)} attributes")
            continue
        row = rows.parse(lineno, filename, values, names)
        if row is not None:
            rows.add(lineno, filename, row)
    if declared is not None and not problems and declared != len(rows.filenames):
        problems.add(
            1, f"the count line says {declared} images but the file lists {len(rows.filenames)}"
        )
    problems.raise_if_any()
    return AttributeFile(path, names, rows.filenames, rows.values(len(names)), rows.lines)


def select_columns(names: tuple[str, ...], selected: tuple[str, ...], where: str) -> list[int]:
    """Column index of each selected name; unknown names list the available ones."""
    position = {name: i for i, name in reversed(list(enumerate(names)))}
    unknown = [s for s in selected if s not in position]
    if unknown:
        shown = ", ".join(names[:50]) + (f" ... ({len(names)} in all)" if len(names) > 50 else "")
        raise DatasetError(
            f"{where}: unknown attribute(s) {', '.join(unknown)}; available: {shown}"
        )
    return [position[s] for s in selected]


@register_dataset("celeba")
def build_celeba(cfg: DataConfig, split: Split) -> ImageListDataset:
    """The ``split`` of a CelebA-format dataset at ``cfg.root`` (see the module docstring)."""
    if cfg.root is None:
        raise DatasetError("the celeba format needs a root folder (--root)")
    attr = parse_attr_file(find_attr_file(cfg.root))
    selected = cfg.selected_attrs or DEFAULT_ATTRS
    columns = select_columns(attr.names, selected, str(attr.path))
    spec = LabelSpec(tuple(selected), "binary")
    if not attr.filenames:
        raise DatasetError(f"{attr.path}: the file lists no images")
    root = Path(cfg.root) if Path(cfg.root).is_dir() else attr.path.parent
    image_dir = find_image_dir(root, IMAGE_DIRS, attr.filenames, str(attr.path))

    train, test = seeded_split(
        len(attr.filenames),
        cfg.test_size,
        cfg.split_seed,
        official=cfg.official_split,
        where=str(attr.path),
    )
    index = train if split == "train" else test
    if not index:
        raise DatasetError(
            f"{attr.path}: the {split} split is empty (test_size="
            f"{cfg.test_size}{', official split' if cfg.official_split else ''})"
        )
    return ImageListDataset(
        [image_dir / attr.filenames[i] for i in index],
        attr.values[index][:, columns],
        spec,
        prep=Preprocessing(cfg.image_size, cfg.crop_size or DEFAULT_CROP),
        bad_images=cfg.bad_images,
        cache=cfg.cache,
        cache_dir=cfg.cache_dir or (root / ".stargan-cache"),
        num_workers=cfg.num_workers,
        source=attr.path,
        lines=[attr.lines[i] for i in index],
    )
