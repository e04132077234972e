"""The attribute-table format: a CSV/TSV with a filename column and one column per attribute.

Made for labels exported from a spreadsheet::

    filename,smiling,glasses,hat
    img/0001.jpg,1,0,0
    img/0002.jpg,true,false,TRUE

- Delimiter: tab for ``.tsv``, comma for ``.csv``, otherwise whichever of tab, comma and
  semicolon the header line uses (European spreadsheets export semicolons). A UTF-8 byte-order
  mark is ignored.
- The filename column is the one named filename, file, image, image_id or path (any case),
  or else the first column. Paths are relative to the table's folder (or its ``images/``
  sub-folder) or absolute.
- Values: 1/0, 1/-1, true/false, yes/no (any case; 1.0 and 0.0 too). Anything else, an empty
  cell or a short row is an error naming the line and column.
- An optional ``split`` column (train/test) assigns the splits; otherwise ``test_size`` rows
  are held out by a seeded shuffle.
- ``root`` is the table file, or a folder holding exactly one ``.csv``/``.tsv``.

Preprocessing: centre crop ``crop_size`` (default: the largest centred square), resize.

Example:
    >>> cfg = DataConfig(name="table", root="labels.csv", test_size=100)
    >>> build_dataset(cfg, "train").label_spec.names               # doctest: +SKIP
    ('smiling', 'glasses', 'hat')
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from stargan.data.celeba import select_columns
from stargan.data.labels import LabelSpec
from stargan.data.registry import DatasetError, Split, register_dataset
from stargan.files import MAX_TEXT_BYTES, UnsafeFileError, describe_error, read_text

FILENAME_COLUMNS = ("filename", "file", "image", "image_id", "path")
SPLIT_COLUMN = "split"
_TRUE = frozenset({"1", "1.0", "true", "yes"})
_FALSE = frozenset({"0", "0.0", "-1", "-1.0", "false", "no"})


@dataclass(frozen=True)
class AttributeTable:
    """A parsed table: every row in file order."""

    path: Path
    names: tuple[str, ...]
    """Attribute column names in table order."""
    filenames: list[str]
    values: np.ndarray
    """float32 [N, len(names)]."""
    lines: list[int]
    splits: list[str] | None
    """'train'/'test' per row when the table has a split column."""


def find_table(root: str | Path) -> Path:
    """``root`` if it is a file, else the single table file inside it."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DatasetError(f"{root}: no such file or folder")
    tables = sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv")
    )
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        raise DatasetError(
            f"{root}: expected exactly one .csv or .tsv label table, found "
            f"{found}; pass the table file itself as the root"
        )
    return tables[0]


def _delimiter(path: Path, header: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv" and "," in header:
        return ","
    counts = {d: header.count(d) for d in ("\t", ",", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; the csv module's own errors (a cell over its 128 KiB limit, a NUL
    byte) become errors naming the line."""
    try:
        yield from reader
    except csv.Error as e:
        raise DatasetError(f"{path}:{reader.line_num}: cannot read the table ({e})") from None


def parse_table(path: str | Path) -> AttributeTable:
    """Read an attribute table, reporting every problem with its line and column.

    Example:
        >>> parse_table("labels.csv").names                            # doctest: +SKIP
        ('smiling', 'glasses')
    """
    path = Path(path)
    try:
        text = read_text(path, MAX_TEXT_BYTES, "label table")
    except (OSError, UnsafeFileError) as e:
        raise DatasetError(f"{path}: cannot read the label table ({describe_error(e)})") from None
    lines_text = text.splitlines()
    if not lines_text or not lines_text[0].strip():
        raise DatasetError(
            f"{path}: empty table; expected a header line with a filename "
            f"column and attribute columns"
        )
    reader = csv.reader(lines_text, delimiter=_delimiter(path, lines_text[0]))
    records = _rows(reader, path)
    header = [h.strip() for h in next(records)]
    problems = Problems(path)
    dupes = sorted(h for h, count in Counter(header).items() if count > 1)
    if dupes:
        more = f" and {len(dupes) - 10} more" if len(dupes) > 10 else ""
        raise DatasetError(f"{path}:1: duplicate column names {dupes[:10]}{more}")
    lowered = [h.lower() for h in header]
    file_col = next((lowered.index(c) for c in FILENAME_COLUMNS if c in lowered), 0)
    split_col = lowered.index(SPLIT_COLUMN) if SPLIT_COLUMN in lowered else None
    attr_cols = [i for i in range(len(header)) if i not in (file_col, split_col)]
    if not attr_cols:
        raise DatasetError(f"{path}:1: no attribute columns besides {header[file_col]!r}")
    names = tuple(header[i] for i in attr_cols)

    rows = BinaryRows(problems, _TRUE, _FALSE, "1/0, 1/-1 or true/false")
    splits: list[str] = []
    for cells in records:
        lineno = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.add(lineno, f"{len(cells)} cells for {len(header)} columns")
            continue
        filename = cells[file_col].strip()
        if not filename:
            problems.add(lineno, f"empty {header[file_col]!r} cell")
            continue
        row = rows.parse(lineno, filename, [cells[i] for i in attr_cols], names)
        ok = row is not None
        if split_col is not None:
            s = cells[split_col].strip().lower()
            if s not in ("train", "test"):
                problems.add(
                    lineno,
                    f"{filename}: split must be 'train' or 'test', got "
                    f"{cells[split_col].strip()!r}",
                )
                ok = False
            splits.append(s)
        if ok:
            rows.add(lineno, filename, row)
    problems.raise_if_any()
    values = rows.values(len(names))
    return AttributeTable(
        path, names, rows.filenames, values, rows.lines, splits if split_col is not None else None
    )


@register_dataset("table")
def build_table(cfg: DataConfig, split: Split) -> ImageListDataset:
    """The ``split`` of the table at ``cfg.root`` (see the module docstring)."""
    if cfg.root is None:
        raise DatasetError("the table format needs a root: the .csv/.tsv file (--root)")
    table = parse_table(find_table(cfg.root))
    if not table.filenames:
        raise DatasetError(f"{table.path}: the table lists no images")
    selected = cfg.selected_attrs or table.names
    columns = select_columns(table.names, selected, str(table.path))
    if table.splits is not None:
        index = [i for i, s in enumerate(table.splits) if s == split]
    else:
        train, test = seeded_split(
            len(table.filenames), cfg.test_size, cfg.split_seed, where=str(table.path)
        )
        index = train if split == "train" else test
    if not index:
        how = "split column" if table.splits is not None else f"test_size={cfg.test_size}"
        raise DatasetError(f"{table.path}: the {split} split is empty ({how})")
    base = table.path.parent
    relative = [table.filenames[i] for i in index if not Path(table.filenames[i]).is_absolute()]
    image_dir = base
    if relative:
        image_dir = find_image_dir(base, ("", "images"), relative, str(table.path))
    return ImageListDataset(
        [image_dir / table.filenames[i] for i in index],
        table.values[index][:, columns],
        LabelSpec(tuple(selected), "binary"),
        prep=Preprocessing(cfg.image_size, cfg.crop_size),
        bad_images=cfg.bad_images,
        cache=cfg.cache,
        cache_dir=cfg.cache_dir or (base / ".stargan-cache"),
        num_workers=cfg.num_workers,
        source=table.path,
        lines=[table.lines[i] for i in index],
    )
