"""``stargan data check``: run every dataset check and summarise what was found.

The check builds both splits with ``bad_images="skip"`` so that one run lists every problem
(each bad image with its reason, every label-file problem with its line) instead of stopping
at the first, and reports images and label counts per split and the source image sizes.

Example:
    >>> report = check_dataset(DataConfig(name="celeba", root="data/celeba"))  # doctest: +SKIP
    >>> print(format_report(report))                               # doctest: +SKIP
    >>> report.ok                                                  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from dataclasses import dataclass, field

from stargan.config import ConfigError, DataConfig
from stargan.data.folder import IgnoredFilesWarning
from stargan.data.labels import LabelError, LabelSpec
from stargan.data.registry import DatasetError, LabelledDataset, Split, build_dataset

SPLITS: tuple[Split, ...] = ("train", "test")
DATA_ERRORS = (DatasetError, LabelError, ConfigError)
"""What a dataset can be wrong by: the check reports these as problems."""


@dataclass
class SplitReport:
    """One split as the check found it."""

    n_images: int
    """Usable images."""
    label_counts: dict[str, int]
    """Images per label (attribute set / class)."""
    sizes: Counter[tuple[int, int]]
    """Source (width, height) -> number of images (empty when the format does not say)."""
    skipped: list[str]
    """Bad images, each with its line and reason."""


@dataclass
class DataReport:
    """The outcome of :func:`check_dataset`; ``ok`` is True when nothing stops training."""

    name: str
    root: str | None
    image_size: int
    """Side the images were checked at, after cropping and resizing."""
    label_spec: LabelSpec | None = None
    splits: dict[str, SplitReport] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Things that stop training or lose images."""
    notes: list[str] = field(default_factory=list)
    """Things that train but probably should not (a label never or always set, ...)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def require_label_count(spec: LabelSpec, expected: int, *, what: str = "the model") -> None:
    """Raise when a dataset's label count does not match what ``what`` was built for.

    Example:
        >>> require_label_count(LabelSpec(("Male", "Young"), "binary"), 5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        stargan.data.registry.DatasetError: the dataset has 2 labels (Male, Young) but the ...
    """
    if spec.n_labels != expected:
        raise DatasetError(
            f"the dataset has {spec.n_labels} labels ({', '.join(spec.names)}) but {what} "
            f"expects {expected}"
        )


def _label_counts(ds: LabelledDataset) -> dict[str, int]:
    if callable(getattr(ds, "label_counts", None)):  # the image-list formats: without torch
        return ds.label_counts()  # type: ignore[attr-defined]
    import torch

    labels = getattr(ds, "labels", None)
    if not isinstance(labels, torch.Tensor):
        labels = torch.stack([ds[i][1] for i in range(len(ds))])
    totals = labels.sum(dim=0).round().to(torch.int64).tolist()
    return dict(zip(ds.label_spec.names, totals, strict=True))


def check_dataset(cfg: DataConfig) -> DataReport:
    """Build every split of ``cfg``'s dataset, decoding every image, and report what was found.

    Never raises for a problem with the data: those end up in ``report.problems``.
    """
    report = DataReport(cfg.name, cfg.root, cfg.image_size)
    scan_cfg = dataclasses.replace(cfg, bad_images="skip", cache="none")
    for split in SPLITS:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # the skipped images are in the report
                ds = build_dataset(scan_cfg, split)
            for w in caught:
                note = str(w.message)  # names its folder (both splits of a flat one)
                if issubclass(w.category, IgnoredFilesWarning) and note not in report.notes:
                    report.notes.append(note)
        except DATA_ERRORS as e:
            message = str(e)
            if message not in report.problems:  # both splits read the same label file
                report.problems.append(message)
            continue
        report.label_spec = ds.label_spec
        skipped = [str(s) for s in getattr(ds, "skipped", [])]
        if skipped:
            report.problems.append(
                f"{split}: {len(skipped)} bad image(s) would be skipped "
                f"(and stop training under bad_images='fail')"
            )
        counts = _label_counts(ds)
        report.splits[split] = SplitReport(
            n_images=len(ds),
            label_counts=counts,
            sizes=Counter(getattr(ds, "source_sizes", [])),
            skipped=skipped,
        )
        if split == "train":
            for name, k in counts.items():
                if k == 0 or (ds.label_spec.kind == "binary" and k == len(ds)):
                    state = "never" if k == 0 else "always"
                    report.notes.append(
                        f"train: label {name!r} is {state} set; the classifier cannot learn it"
                    )
    return report


def format_report(report: DataReport) -> str:
    """A plain-text summary of ``report`` for the terminal."""
    out = [
        f"dataset {report.name!r} at {report.root}, checked at {report.image_size} px "
        f"(--image-size)"
    ]
    spec = report.label_spec
    if spec is not None:
        out.append(f"labels ({spec.kind}, {spec.n_labels}): {', '.join(spec.names)}")
    if report.splits:
        splits = list(report.splits)
        width = max([5, *(len(n) for n in spec.names)]) if spec else 5
        out.append("")
        out.append(f"{'':<{width}}  " + "  ".join(f"{s:>8}" for s in splits))
        out.append(
            f"{'images':<{width}}  " + "  ".join(f"{report.splits[s].n_images:>8}" for s in splits)
        )
        out.append(
            f"{'skipped':<{width}}  "
            + "  ".join(f"{len(report.splits[s].skipped):>8}" for s in splits)
        )
        for name in spec.names if spec else []:
            out.append(
                f"{name:<{width}}  "
                + "  ".join(f"{report.splits[s].label_counts.get(name, 0):>8}" for s in splits)
            )
        sizes: Counter[tuple[int, int]] = Counter()
        for s in splits:
            sizes.update(report.splits[s].sizes)
        if sizes:
            out.append("")
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(5))
            more = f", {len(sizes) - 5} other sizes" if len(sizes) > 5 else ""
            widths = [w for w, _ in sizes]
            heights = [h for _, h in sizes]
            out.append(
                f"image sizes: {common}{more}; width {min(widths)}-{max(widths)}, "
                f"height {min(heights)}-{max(heights)}"
            )
    out.append("")
    if report.problems:
        out.append(f"problems ({len(report.problems)}):")
        out += [f"  - {p}".replace("\n", "\n    ") for p in report.problems]
        for s, split in report.splits.items():
            out += [f"  {s}: {line}" for line in split.skipped]
    else:
        out.append("problems: none")
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)
