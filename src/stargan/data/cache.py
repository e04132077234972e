"""The image-list dataset every file format builds on, and its pre-decoded image cache.

A format module (celeba.py, folder.py, table.py, ...) only parses its label file into a list
of image paths and a label matrix; :class:`ImageListDataset` does the rest the same way for
all of them: validation before training starts, the bad-image policy, the optional cache and
the decode -> crop -> resize -> [-1, 1] pipeline of :mod:`stargan.data.io`.

Validation at construction (so bad files are known before the first step):

- ``bad_images="fail"`` without a cache: every header is probed (missing, empty, non-image,
  oversized, smaller than the crop); the first problem raises :class:`DatasetError` naming the
  label file, the line and the image. Pixel data is decoded lazily, and a truncated file met
  later raises the same error.
- ``bad_images="skip"``: every image is fully decoded once (use a cache to keep that work)
  and bad ones are dropped; ``dataset.skipped`` lists each with its reason and a warning says
  how many.

The cache (``cache="memory"`` or ``"disk"``) holds each image already cropped and resized, as
uint8 [N, S, S, 3], so epochs after the first do no JPEG decoding. The disk cache is a raw
memory-mapped file named by a SHA-256 of the source list (paths, sizes, modification times)
and the preprocessing settings; any change builds a new one, an unchanged dataset reuses it.

Example:
    >>> ds = ImageListDataset(files, labels, LabelSpec(("Male",), "binary"),
    ...                       prep=Preprocessing(128, 178), cache="memory")  # doctest: +SKIP
    >>> image, label = ds[0]      # [3, 128, 128] in [-1, 1], [1]       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from stargan.data.io import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    decode_image,
    preprocess,
    probe_image,
    to_tensor,
)
from stargan.data.labels import LabelSpec
from stargan.data.registry import DatasetError
from stargan.files import MAX_TEXT_BYTES, parse_json, read_text

# Listing, labelling and checking images need no torch (`stargan data check` runs without it,
# a second sooner); it is imported where tensors are made and where worker processes decode.
if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever the decoder or preprocessing changes what a cached pixel holds."""
MAX_LISTED = 10
MAX_MESSAGE = 400  # characters of one problem shown; a hostile 10 MB line must not be echoed
"""Problems spelled out in one error message or warning before '... and N more'."""


@dataclass(frozen=True)
class Preprocessing:
    """How a source image becomes a training image (and part of the disk-cache key)."""

    image_size: int
    """Side of the output square."""
    crop_size: int | None = None
    """Centre crop before resizing; None = the largest centred square."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Decompression-bomb limit of the decoder."""
    background: tuple[int, int, int] = (255, 255, 255)
    """Colour that transparent pixels are composited onto."""

    def __call__(self, path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
        """uint8 [S, S, 3] and the source (width, height); raises ImageDecodeError."""
        name = str(path)
        img = decode_image(path, name=name, max_pixels=self.max_pixels, background=self.background)
        return preprocess(img, self.image_size, self.crop_size, name=name), img.size

    def probe(self, path: str | Path) -> tuple[int, int]:
        """Header-only check of ``path`` (format, bomb limit, size vs crop): (width, height)."""
        name = str(path)
        info = probe_image(path, name=name, max_pixels=self.max_pixels)
        crop = self.crop_size
        if crop is not None and (info.width < crop or info.height < crop):
            raise ImageDecodeError(
                name,
                f"image is {info.width} x {info.height}, smaller than the "
                f"{crop} x {crop} centre crop",
            )
        return info.width, info.height


@dataclass(frozen=True)
class SkippedImage:
    """A bad image left out under ``bad_images="skip"``."""

    path: str
    line: int | None
    """Line of the label file that listed it (None for formats without one)."""
    reason: str

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"


class Problems:
    """Collects every validation problem of a label file, then raises them together.

    Example:
        >>> p = Problems("labels.csv")
        >>> p.add(3, "duplicate filename 'a.png' (first listed on line 2)")
        >>> p.raise_if_any()
        Traceback (most recent call last):
        ...
        stargan.data.registry.DatasetError: labels.csv: 1 problem:
          line 3: duplicate filename 'a.png' (first listed on line 2)
    """

    def __init__(self, source: str | Path) -> None:
        self.source = str(source)
        self.items: list[str] = []

    def add(self, line: int | None, message: str) -> None:
        if len(message) > MAX_MESSAGE:
            half = MAX_MESSAGE // 2
            cut = len(message) - 2 * half
            message = f"{message[:half]} [... {cut} characters ...] {message[-half:]}"
        self.items.append(message if line is None else f"line {line}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        n = len(self.items)
        shown = "\n".join(f"  {m}" for m in self.items[:MAX_LISTED])
        more = f"\n  ... and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        plural = "problem" if n == 1 else "problems"
        raise DatasetError(f"{self.source}: {n} {plural}:\n{shown}{more}")


class BinaryRows:
    """The rows of a binary attribute list, each file listed once: CelebA's attribute file and
    the table format both read their rows through this, each with its own spellings of 1 and 0
    (``true``, ``false``; ``expected`` says them in messages). Problems go to ``problems``."""

    def __init__(
        self, problems: Problems, true: frozenset[str], false: frozenset[str], expected: str
    ) -> None:
        self.problems, self.true, self.false, self.expected = problems, true, false, expected
        self.filenames: list[str] = []
        self.rows: list[list[float]] = []
        self.lines: list[int] = []
        self._first: dict[str, int] = {}

    def parse(
        self, lineno: int, filename: str, cells: Sequence[str], names: Sequence[str]
    ) -> list[float] | None:
        """The row's 0/1 values, or None once its problem is recorded: a file listed before,
        or a value that is not binary."""
        if filename in self._first:
            first = self._first[filename]
            self.problems.add(
                lineno, f"duplicate filename {filename!r} (first listed on line {first})"
            )
            return None
        row = []
        for cell, name in zip(cells, names, strict=True):
            value = cell.strip().lower()
            if value not in self.true and value not in self.false:
                shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                self.problems.add(
                    lineno,
                    f"{filename}: non-binary value {shown} for {name} (expected {self.expected})",
                )
                return None
            row.append(1.0 if value in self.true else 0.0)
        return row

    def add(self, lineno: int, filename: str, row: list[float]) -> None:
        self._first[filename] = lineno
        self.filenames.append(filename)
        self.rows.append(row)
        self.lines.append(lineno)

    def values(self, n_names: int) -> np.ndarray:
        """[rows, n_names] float32 0/1."""
        return np.array(self.rows, dtype=np.float32).reshape(len(self.rows), n_names)


def seeded_split(
    n: int, test_size: int, seed: int, *, official: bool = False, where: str = "dataset"
) -> tuple[list[int], list[int]]:
    """(train indices, test indices) of ``n`` entries in file order.

    Our split holds out exactly ``test_size`` entries chosen by a seeded shuffle and keeps
    both parts in file order. ``official=True`` reproduces the 2018 release: Python's
    ``random.seed(seed); random.shuffle(lines)``, the first ``test_size - 1`` lines for testing
    (its off-by-one), both parts in shuffled order.

    Example:
        >>> train, test = seeded_split(10, 3, seed=0)
        >>> len(train), len(test), sorted(train + test) == list(range(10))
        (7, 3, True)
    """
    if test_size >= n:
        raise DatasetError(
            f"{where}: test_size={test_size} but the dataset has only {n} images, which would "
            f"leave no training images; set a smaller test_size (--test-size)"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    if official:
        k = max(test_size - 1, 0)
        return order[k:], order[:k]
    return sorted(order[test_size:]), sorted(order[:test_size])


def find_image_dir(
    root: Path, candidates: Sequence[str], filenames: Sequence[str], where: str
) -> Path:
    """The ``root/candidate`` folder holding most of the first listed images.

    Looking at several names means one missing file is reported as that file missing, not as
    a wrong image folder.
    """
    tried = [root / c if c else root for c in candidates]
    sample = list(filenames[:20])
    hits = [sum((folder / f).is_file() for f in sample) for folder in tried]
    if max(hits, default=0) == 0:
        raise DatasetError(
            f"{where}: cannot find the listed images ({', '.join(map(repr, sample[:3]))}, ...) "
            f"in any of: {', '.join(str(t) for t in tried)}"
        )
    return tried[hits.index(max(hits))]


ScanMode = Literal["probe", "decode", "keep"]


class _Scan:
    """One pass over the files, run by a DataLoader when workers parallelise decoding."""

    def __init__(self, files: Sequence[str], prep: Preprocessing, mode: ScanMode) -> None:
        self.files, self.prep, self.mode = files, prep, mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, tuple[int, int], str | None]:
        try:
            if self.mode == "probe":
                return i, None, self.prep.probe(self.files[i]), None
            array, size = self.prep(self.files[i])
            return i, (array if self.mode == "keep" else None), size, None
        except ImageDecodeError as e:
            return i, None, (0, 0), str(e)


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


@dataclass
class ScanResult:
    """What a pass over every file found."""

    sizes: list[tuple[int, int]]
    """Source (width, height) per file; (0, 0) for bad ones."""
    errors: dict[int, str]
    """File index -> error message (naming the file)."""
    array: np.ndarray | None = None
    """uint8 [N, S, S, 3] in "keep" mode (zeros for bad files)."""


def scan(
    files: Sequence[str],
    prep: Preprocessing,
    mode: ScanMode,
    *,
    num_workers: int = 0,
    out: np.ndarray | None = None,
    stop_at_first_error: bool = False,
) -> ScanResult:
    """Probe or decode every file, in parallel with ``num_workers`` processes."""
    items = _Scan(files, prep, mode)
    batches: Any = (
        [items[i] for i in range(start, min(start + 64, len(items)))]
        for start in range(0, len(items), 64)
    )
    if num_workers > 0:
        from torch.utils.data import DataLoader

        batches = DataLoader(items, batch_size=64, num_workers=num_workers, collate_fn=_as_list)
    sizes: list[tuple[int, int]] = [(0, 0)] * len(files)
    errors: dict[int, str] = {}
    for batch in batches:
        for i, array, size, error in batch:
            sizes[i] = size
            if error is not None:
                errors[i] = error
            elif out is not None and array is not None:
                out[i] = array
        if errors and stop_at_first_error:
            break
    return ScanResult(sizes, errors, out)


def cache_key(files: Sequence[str], prep: Preprocessing) -> str:
    """SHA-256 of the source list (path, size, mtime) and the preprocessing settings."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "prep": asdict(prep)}, sort_keys=True).encode())
    for f in files:
        try:
            st = os.stat(f)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"\n{os.path.abspath(f)}\t{stamp}".encode())
    return h.hexdigest()


def _open_disk_cache(data_path: Path, meta_path: Path, shape: tuple[int, ...]) -> ScanResult | None:
    """The cache at ``data_path`` if it is complete and intact; None means build it again."""
    try:
        meta = parse_json(read_text(meta_path, MAX_TEXT_BYTES, "image cache index"))
        complete = (
            meta.get("version") == CACHE_VERSION
            and meta.get("shape") == list(shape)
            and data_path.stat().st_size == int(np.prod(shape))
        )
        if not complete:
            return None
        sizes = [(int(w), int(h)) for w, h in meta["sizes"]]
        errors = {int(k): str(v) for k, v in meta["errors"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, half-written or foreign metadata: rebuild rather than trust it
    log.info("using the image cache %s", data_path)
    array = np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
    return ScanResult(sizes, errors, array)


def build_cache(
    files: Sequence[str],
    prep: Preprocessing,
    mode: Literal["memory", "disk"],
    *,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
) -> ScanResult:
    """Decode every file once into uint8 [N, S, S, 3] held in memory or in a memory-mapped file.

    A disk cache whose key matches is opened instead of rebuilt. Bad files are recorded in
    ``errors`` (and in the cache's metadata), never raised: the caller applies its policy.
    """
    s = prep.image_size
    shape = (len(files), s, s, 3)
    if mode == "memory" or not files:  # (an empty file cannot be memory-mapped)
        return scan(
            files, prep, "keep", num_workers=num_workers, out=np.zeros(shape, dtype=np.uint8)
        )
    if cache_dir is None:
        raise DatasetError("a disk cache needs a cache_dir")
    folder = Path(cache_dir)
    key = cache_key(files, prep)
    data_path, meta_path = folder / f"{key}.u8", folder / f"{key}.json"
    reused = _open_disk_cache(data_path, meta_path, shape)
    if reused is not None:
        return reused
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise DatasetError(
            f"cannot write the image cache in {folder} ({e.strerror or e}); "
            f"choose a writable folder with cache_dir (--cache-dir)"
        ) from None
    os.close(fd)
    log.info("building the image cache %s (%d images)", data_path, len(files))
    try:
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        result = scan(files, prep, "keep", num_workers=num_workers, out=out)
        out.flush()
        del out
        os.replace(tmp, data_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Metadata last: its presence marks a complete cache.
    meta = {
        "version": CACHE_VERSION,
        "shape": list(shape),
        "prep": asdict(prep),
        "sizes": result.sizes,
        "errors": {str(k): v for k, v in result.errors.items()},
    }
    meta_tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    meta_tmp.write_text(json.dumps(meta))
    os.replace(meta_tmp, meta_path)
    result.array = np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
    return result


class ImageListDataset:
    """Images listed in a label file, with their labels: yields (float [3, S, S], float [n]).

    A map-style dataset (``__len__`` and ``__getitem__``) for ``torch.utils.data.DataLoader``;
    built, checked and counted without torch, which only its items need.

    Attributes:
        files: paths of the images kept, in dataset order.
        labels: float32 [N, n] labels of the images kept (a tensor; ``label_array``: the same
            memory as a NumPy array).
        label_spec: the label names and kind.
        skipped: bad images left out (``bad_images="skip"`` only).
        source_sizes: source (width, height) of each image kept, as validation found them.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        labels: torch.Tensor | np.ndarray,
        label_spec: LabelSpec,
        *,
        prep: Preprocessing,
        bad_images: Literal["fail", "skip"] = "fail",
        cache: Literal["none", "memory", "disk"] = "none",
        cache_dir: str | Path | None = None,
        num_workers: int = 0,
        source: str | Path = "<list>",
        lines: Sequence[int] | None = None,
    ) -> None:
        all_files = [str(f) for f in files]
        n = len(all_files)
        if labels.shape != (n, label_spec.n_labels):
            raise DatasetError(
                f"{source}: labels must be [{n}, {label_spec.n_labels}] (images x "
                f"{', '.join(label_spec.names)}), got {list(labels.shape)}"
            )
        if lines is not None and len(lines) != n:
            raise DatasetError(f"{source}: {len(lines)} line numbers for {n} images")
        self.label_spec = label_spec
        self.prep = prep
        self.source = str(source)
        self._lines = list(lines) if lines is not None else None
        self._all_files = all_files
        self._disk_path: str | None = None

        # Validate before training starts: decode everything when a cache or the skip
        # policy needs it, otherwise a cheap header probe.
        if cache != "none":
            result = build_cache(
                all_files, prep, cache, cache_dir=cache_dir, num_workers=num_workers
            )
            if isinstance(result.array, np.memmap):
                self._disk_path = str(result.array.filename)
        else:
            mode: ScanMode = "decode" if bad_images == "skip" else "probe"
            result = scan(
                all_files,
                prep,
                mode,
                num_workers=num_workers,
                stop_at_first_error=bad_images == "fail",
            )
        self._array = result.array

        bad = sorted(result.errors)
        if bad and bad_images == "fail":
            i = bad[0]
            raise DatasetError(
                f"{self._where(i)}: {result.errors[i]}  (bad_images='fail'; use "
                f"bad_images='skip' (--bad-images skip) to leave bad images out)"
            )
        self.skipped = [SkippedImage(all_files[i], self._line(i), result.errors[i]) for i in bad]
        bad_set = set(bad)
        self._index = [i for i in range(n) if i not in bad_set]
        self.files = [all_files[i] for i in self._index]
        self.label_array = np.ascontiguousarray(np.asarray(labels)[self._index], np.float32)
        self.source_sizes = [result.sizes[i] for i in self._index]
        if not self.skipped:
            return
        listed = "\n".join(f"  {s}" for s in self.skipped[:MAX_LISTED])
        more = len(self.skipped) - MAX_LISTED
        listed += f"\n  ... and {more} more (see dataset.skipped)" if more > 0 else ""
        if not self._index:
            raise DatasetError(f"{self.source}: every one of the {n} images is bad:\n{listed}")
        message = (
            f"{self.source}: skipped {len(self.skipped)} of {n} images "
            f"(bad_images='skip'):\n{listed}"
        )
        log.warning(message)
        warnings.warn(message, stacklevel=2)

    def _line(self, i: int) -> int | None:
        return None if self._lines is None else self._lines[i]

    def _where(self, i: int) -> str:
        line = self._line(i)
        return self.source if line is None else f"{self.source}:{line}"

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self._index[i]
        if self._array is None and self._disk_path is not None:  # reopened in a worker
            shape = (len(self._all_files), self.prep.image_size, self.prep.image_size, 3)
            self._array = np.memmap(self._disk_path, dtype=np.uint8, mode="r", shape=shape)
        if self._array is not None:
            array = np.array(self._array[j])  # copy: memmaps are read-only
        else:
            try:
                array, _ = self.prep(self._all_files[j])
            except ImageDecodeError as e:
                raise DatasetError(f"{self._where(j)}: {e}") from e
        return to_tensor(array), self.labels[i]

    @property
    def labels(self) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.label_array)

    def __getstate__(self) -> dict[str, Any]:
        # A memmap would be pickled as a full in-memory copy; workers reopen the file instead.
        state = self.__dict__.copy()
        if self._disk_path is not None:
            state["_array"] = None
        return state

    def label_counts(self) -> dict[str, int]:
        """Images per label (binary: attribute set; categorical: class)."""
        totals = self.label_array.sum(axis=0).round().astype(np.int64).tolist()
        return dict(zip(self.label_spec.names, totals, strict=True))
