"""Label spaces: which domains a model knows, how they are encoded, and how targets are drawn.

A dataset contributes one :class:`LabelSpec`. Binary specs are multi-hot attribute vectors
(CelebA); categorical specs are one-hot class vectors (RaFD). Every label travels as a float
vector so that G always sees the same kind of input, whatever the dataset.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stargan.files import UnsafeFileError, check_name

if TYPE_CHECKING:  # only label tensors need torch: a label space is read without it
    import torch

LabelKind = Literal["binary", "categorical"]


class LabelError(ValueError):
    """A label name, value or vector that does not fit the label space."""


@dataclass(frozen=True)
class LabelSpec:
    """The labels of one dataset.

    Example:
        >>> LabelSpec(("Black_Hair", "Male"), "binary").n_labels
        2
    """

    names: tuple[str, ...]
    """Label names in vector order (attribute names or class names)."""
    kind: LabelKind
    """"binary": independent 0/1 attributes (BCE); "categorical": exactly one class (CE)."""

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "categorical"):
            raise LabelError(
                f"label kind must be 'binary' or 'categorical', got {str(self.kind)[:40]!r}"
            )
        if not self.names:
            raise LabelError("a label space needs at least one label name")
        for name in self.names:
            # Label names become file names (translate's outputs) and come from strangers'
            # files (model metadata, dataset folders and columns): one rule, checked here.
            try:
                check_name(name, "label name")
            except UnsafeFileError as e:
                raise LabelError(str(e)) from None
        dupes = sorted(n for n, count in Counter(self.names).items() if count > 1)
        if dupes:
            raise LabelError(f"duplicate label names: {dupes}")

    @property
    def n_labels(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of ``name``; an unknown name lists the valid ones."""
        try:
            return self.names.index(name)
        except ValueError:
            raise LabelError(
                f"unknown label {name!r}; this label space has: {', '.join(self.names)}"
            ) from None


HAIR_COLOURS = frozenset({"Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"})
"""CelebA's hair-colour attributes: setting one as a target clears the other selected ones."""


@dataclass(frozen=True)
class LabelLayout:
    """The label vector G sees: [slice of dataset 1 | ... | slice of dataset K | mask of K].

    With one dataset there is no mask and the vector is that dataset's labels. D's classifier
    covers every slot except the mask (``n_classes``).

    Example:
        >>> lay = LabelLayout((LabelSpec(("Male",), "binary"),
        ...                    LabelSpec(("happy", "sad"), "categorical")))
        >>> lay.c_dim, lay.n_classes, lay.slice(1)
        (5, 3, slice(1, 3, None))
    """

    specs: tuple[LabelSpec, ...]

    def __post_init__(self) -> None:
        if not self.specs:
            raise LabelError("a label layout needs at least one label spec")

    @property
    def n_datasets(self) -> int:
        return len(self.specs)

    @property
    def n_classes(self) -> int:
        return sum(s.n_labels for s in self.specs)

    @property
    def c_dim(self) -> int:
        return self.n_classes + (self.n_datasets if self.n_datasets > 1 else 0)

    def slice(self, k: int) -> slice:
        start = sum(s.n_labels for s in self.specs[:k])
        return slice(start, start + self.specs[k].n_labels)

    def embed(self, k: int, labels: torch.Tensor) -> torch.Tensor:
        """Dataset k's labels [N, n_k] -> full vectors [N, c_dim] (zeros elsewhere, mask e_k)."""
        spec = self.specs[k]
        if labels.dim() != 2 or labels.shape[1] != spec.n_labels:
            raise LabelError(
                f"dataset {k} labels must be [N, {spec.n_labels}] ({', '.join(spec.names)}), "
                f"got {list(labels.shape)}"
            )
        if self.n_datasets == 1:
            return labels
        out = labels.new_zeros(labels.shape[0], self.c_dim)
        out[:, self.slice(k)] = labels
        out[:, self.n_classes + k] = 1
        return out

    def to_dict(self) -> list[dict[str, object]]:
        return [{"names": list(s.names), "kind": s.kind} for s in self.specs]

    @classmethod
    def from_dict(cls, data: list[dict[str, object]]) -> LabelLayout:
        try:
            return cls(tuple(LabelSpec(tuple(d["names"]), d["kind"]) for d in data))  # type: ignore[arg-type]
        except (KeyError, TypeError) as e:
            shown = repr(data)
            shown = shown if len(shown) <= 200 else f"{shown[:200]}..."
            raise LabelError(f"malformed label layout {shown}: {e!r}"[:400]) from None

    def find(self, name: str) -> tuple[int, int]:
        """(dataset k, position in its slice) of a label name; unknown names list all names."""
        hits = [(k, s.names.index(name)) for k, s in enumerate(self.specs) if name in s.names]
        if not hits:
            every = [n for s in self.specs for n in s.names]
            raise LabelError(f"unknown label {name!r}; valid labels: {', '.join(every)}")
        if len(hits) > 1:
            raise LabelError(f"label {name!r} exists in several datasets {[k for k, _ in hits]}")
        return hits[0]


def set_target(
    spec: LabelSpec, labels: torch.Tensor, name: str, value: float = 1.0
) -> torch.Tensor:
    """Copy of ``labels`` [N, n] with ``name`` set to ``value``, keeping labels consistent:
    a categorical target becomes that class alone; a hair colour set on clears the other
    selected hair colours (CelebA's exclusivity)."""
    i = spec.index(name)
    out = labels.clone()
    if spec.kind == "categorical":
        out.zero_()
        out[:, i] = value
        return out
    if name in HAIR_COLOURS and value > 0:
        for j, other in enumerate(spec.names):
            if other in HAIR_COLOURS and j != i:
                out[:, j] = 0
    out[:, i] = value
    return out


def sample_targets(spec: LabelSpec, labels: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """One target per label for sample grids and evaluation, as the official code builds them:
    a hair colour is set (others cleared), any other binary attribute is flipped, and each
    category is chosen in turn. Returns (column title, labels [N, n]) pairs."""
    targets = []
    for j, name in enumerate(spec.names):
        if spec.kind == "binary" and name not in HAIR_COLOURS:
            targets.append((name, _flip(labels, j)))
        else:
            targets.append((name, set_target(spec, labels, name)))
    return targets


def _flip(labels: torch.Tensor, j: int) -> torch.Tensor:
    out = labels.clone()
    out[:, j] = 1 - out[:, j]
    return out


def permute_targets(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training targets: the labels of other images in the batch (a random permutation)."""
    import torch

    perm = torch.randperm(labels.shape[0], generator=generator)
    return labels[perm.to(labels.device)]
