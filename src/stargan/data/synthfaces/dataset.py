"""SynthFaces as a dataset: items rendered from (seed, index, style) alone, in memory or
exported in the official CelebA / RaFD layouts with the factors saved for ground truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from stargan.config import DataConfig
from stargan.data.labels import LabelError, LabelSpec
from stargan.data.registry import Split, register_dataset
from stargan.data.synthfaces.faces import (
    ATTRIBUTE_SPEC,
    CELEBA_ATTRIBUTES,
    DEFAULT_SELECTED_ATTRS,
    EXPRESSIONS,
    HAIR_COLOURS,
    STYLE_CODE,
    FaceState,
    Identity,
    Style,
    check_size,
    check_style,
    sample_identity,
    sample_state,
)
from stargan.data.synthfaces.render import render
from stargan.files import MAX_TEXT_BYTES, parse_json, read_text

# Rendering needs no torch; it is imported where tensors are made, so that registering these
# formats (importing stargan.data) does not load it.
if TYPE_CHECKING:
    import torch


def _item_rngs(seed: int, index: int, style: str) -> tuple[np.random.Generator, ...]:
    """Independent generators for an item's identity and state: (seed, index, style) alone
    decide an item, so order, workers and dataset length do not matter."""
    base = [seed, index, STYLE_CODE[style]]
    return tuple(np.random.default_rng(np.random.SeedSequence([*base, k])) for k in (0, 1))


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(img).permute(2, 0, 1).float().div(127.5).sub(1.0)  # [3, S, S]


class SynthFaces:
    """SynthFaces in memory: item i is rendered from (seed, i, style) alone, no disk. A
    map-style dataset (``__len__`` and ``__getitem__``) for ``torch.utils.data.DataLoader``.

    celeba style: every item is its own identity; labels are the ``selected_attrs``
    (multi-hot). rafd style: subject ``i // 8`` shows expression ``EXPRESSIONS[i % 8]``
    (one-hot), like RaFD's grid of subjects x expressions. Rendered images are cached as uint8
    when the cache fits ``cache_mb``.

    Example:
        >>> ds = SynthFaces("rafd", size=32, n=16, seed=0)
        >>> x, c = ds[9]
        >>> x.shape, ds.label_spec.names[int(c.argmax())]
        (torch.Size([3, 32, 32]), 'contemptuous')
    """

    def __init__(
        self,
        style: Style = "celeba",
        size: int = 32,
        n: int = 2000,
        seed: int = 0,
        selected_attrs: Sequence[str] | None = None,
        correlated: bool = False,
        cache_mb: float = 256.0,
    ) -> None:
        check_style(style)
        check_size(size)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"SynthFaces needs n >= 1 images, got {n!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"SynthFaces seed must be a non-negative int, got {seed!r}")
        self.style, self.size, self.n, self.seed, self.correlated = style, size, n, seed, correlated
        if style == "celeba":
            names = tuple(DEFAULT_SELECTED_ATTRS if selected_attrs is None else selected_attrs)
            for name in names:
                ATTRIBUTE_SPEC.index(name)
            self.label_spec = LabelSpec(names, "binary")
        else:
            if selected_attrs is not None:
                raise ValueError(
                    "selected_attrs applies to style 'celeba'; rafd labels are the 8 expressions"
                )
            self.label_spec = LabelSpec(EXPRESSIONS, "categorical")
        self._cache: np.ndarray | None = None
        if n * size * size * 3 <= cache_mb * 2**20:
            self._cache = np.zeros((n, size, size, 3), dtype=np.uint8)
            self._cached = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return self.n

    def _index(self, i: int) -> int:
        if not -self.n <= i < self.n:
            raise IndexError(f"SynthFaces index {i} out of range for {self.n} images")
        return int(i) % self.n

    def _item(self, i: int) -> tuple[Identity, FaceState]:
        i = self._index(i)
        if self.style == "rafd":
            rng_id, rng_state = _item_rngs(self.seed, i // len(EXPRESSIONS), self.style)
            state = sample_state(rng_state, "rafd")
            return sample_identity(rng_id, "rafd"), state.with_expression(
                EXPRESSIONS[i % len(EXPRESSIONS)]
            )
        rng_id, rng_state = _item_rngs(self.seed, i, self.style)
        return sample_identity(rng_id, "celeba"), sample_state(rng_state, "celeba", self.correlated)

    def identity(self, i: int) -> Identity:
        return self._item(i)[0]

    def state(self, i: int) -> FaceState:
        return self._item(i)[1]

    def label(self, i: int) -> torch.Tensor:
        """Label vector of item i without rendering it."""
        return self.encode(self.state(i))

    def encode(self, state: FaceState) -> torch.Tensor:
        """The label vector of ``state`` in this dataset's encoding: float32 [n_labels]."""
        import torch

        if self.label_spec.kind == "binary":
            return torch.tensor([float(a in state.attributes) for a in self.label_spec.names])
        out = torch.zeros(len(EXPRESSIONS))
        out[EXPRESSIONS.index(state.expression)] = 1.0
        return out

    def image_uint8(self, i: int) -> np.ndarray:
        """Item i as uint8 [size, size, 3] (from the cache when there is one)."""
        i = self._index(i)
        if self._cache is not None and self._cached[i]:
            return self._cache[i]
        img = render(*self._item(i), self.size)
        if self._cache is not None:
            self._cache[i] = img
            self._cached[i] = True
        return img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_tensor(self.image_uint8(i)), self.label(i)

    def state_for_label(self, i: int, label: torch.Tensor | Sequence[float]) -> FaceState:
        """The state item i would show under target ``label`` (same encoding as the items).

        Binary: each selected attribute is set or cleared; setting a hair colour clears every
        other hair colour (selected or not), all selected colours at 0 clears only those;
        unselected attributes stay. Categorical: the expression becomes the one-hot class.
        """
        import torch

        c = torch.as_tensor(label, dtype=torch.float32).detach().cpu().flatten()
        spec = self.label_spec
        if c.numel() != spec.n_labels:
            raise LabelError(
                f"target label has {c.numel()} values, this dataset has "
                f"{spec.n_labels}: {', '.join(spec.names)}"
            )
        if not bool(((c == 0) | (c == 1)).all()):
            raise LabelError(f"target label must be 0/1 valued, got {c.tolist()}")
        state = self.state(i)
        if spec.kind == "categorical":
            if int(c.sum()) != 1:
                raise LabelError(f"a categorical target must be one-hot, got {c.tolist()}")
            return state.with_expression(EXPRESSIONS[int(c.argmax())])
        on = {name for name, v in zip(spec.names, c.tolist(), strict=True) if v == 1}
        hair_on = sorted(on.intersection(HAIR_COLOURS))
        if len(hair_on) > 1:
            raise LabelError(f"target sets several hair colours at once: {hair_on}")
        for name in spec.names:
            if name not in HAIR_COLOURS:
                state = state.with_attribute(name, name in on)
            elif name not in on and name in state.attributes:
                state = state.with_attribute(name, False)
        if hair_on:
            state = state.with_attribute(hair_on[0], True)
        return state

    def counterfactual(self, i: int, label: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Ground truth for G(x_i, label): image [3, size, size] in [-1, 1]."""
        return _to_tensor(render(self.identity(i), self.state_for_label(i, label), self.size))


def _save(img: np.ndarray, path: Path) -> None:
    if path.suffix == ".png":
        Image.fromarray(img).save(path, compress_level=6)
    else:
        Image.fromarray(img).save(path, quality=95, subsampling=0)


def _write_index(
    out: Path, style: str, size: int, seed: int, correlated: bool, records: dict[str, Any]
) -> None:
    meta = {
        "format": "synthfaces-1",
        "style": style,
        "size": size,
        "seed": seed,
        "correlated": correlated,
        "files": records,
    }
    (out / "identities.json").write_text(json.dumps(meta))


def export_celeba(
    out_dir: str | Path,
    n: int,
    size: int,
    seed: int,
    correlated: bool = False,
    ext: Literal["png", "jpg"] = "png",
) -> Path:
    """Write celeba-style faces in CelebA's layout: ``images/000001.png ...``,
    ``list_attr_celeba.txt`` (count, attribute names, then ``name v1 v2 ...`` with 1 / -1 as in
    the official file) and ``identities.json`` (factors for :func:`load_ground_truth`).
    PNG by default so ground truth matches the files exactly; ``ext="jpg"`` writes quality-95
    JPEGs under CelebA's own naming.

    Example:
        >>> root = export_celeba("data/synth_celeba", n=2000, size=128, seed=0)  # doctest: +SKIP
    """
    if ext not in ("png", "jpg"):
        raise ValueError(f"ext must be 'png' or 'jpg', got {ext!r}")
    ds = SynthFaces("celeba", size, n, seed, CELEBA_ATTRIBUTES, correlated, cache_mb=0)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines, records = [str(n), " ".join(CELEBA_ATTRIBUTES)], {}
    for i in range(n):
        name = f"{i + 1:06d}.{ext}"
        identity, state = ds._item(i)
        _save(render(identity, state, size), out / "images" / name)
        values = "".join(f" {1 if a in state.attributes else -1:2d}" for a in CELEBA_ATTRIBUTES)
        lines.append(name + values)
        records[name] = {"identity": identity.to_dict(), "state": state.to_dict()}
    (out / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    _write_index(out, "celeba", size, seed, correlated, records)
    return out


def export_rafd(out_dir: str | Path, n: int, size: int, seed: int) -> Path:
    """Write rafd-style faces in RaFD's folder layout: ``<expression>/<subject>_<expression>.png``
    for the 8 expressions (image i is subject i // 8 showing expression i % 8), plus
    ``identities.json`` keyed by the path relative to ``out_dir``.

    Example:
        >>> root = export_rafd("data/synth_rafd", n=800, size=128, seed=0)  # doctest: +SKIP
    """
    ds = SynthFaces("rafd", size, n, seed, cache_mb=0)
    out = Path(out_dir)
    for expression in EXPRESSIONS:
        (out / expression).mkdir(parents=True, exist_ok=True)
    records = {}
    for i in range(n):
        identity, state = ds._item(i)
        name = f"{state.expression}/{i // len(EXPRESSIONS):05d}_{state.expression}.png"
        _save(render(identity, state, size), out / name)
        records[name] = {"identity": identity.to_dict(), "state": state.to_dict()}
    _write_index(out, "rafd", size, seed, False, records)
    return out


def load_ground_truth(export_dir: str | Path) -> dict[str, tuple[Identity, FaceState, str]]:
    """``{name: (identity, state, style)}`` for an export, names as in the export (celeba: the
    file name in list_attr_celeba.txt; rafd: ``<expression>/<file>``).
    ``render(identity, state, size)`` reproduces a PNG export exactly.

    Example:
        >>> gt = load_ground_truth("data/synth_celeba")                      # doctest: +SKIP
        >>> identity, state, style = gt["000001.png"]                         # doctest: +SKIP
    """
    path = Path(export_dir) / "identities.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: was {export_dir} written by export_celeba or export_rafd?"
        )
    meta = parse_json(read_text(path, MAX_TEXT_BYTES, "SynthFaces ground truth"), str(path))
    if not isinstance(meta, dict) or meta.get("format") != "synthfaces-1":
        raise ValueError(f"{path}: expected a SynthFaces export index (format 'synthfaces-1')")
    return {
        name: (Identity.from_dict(r["identity"]), FaceState.from_dict(r["state"]), meta["style"])
        for name, r in meta["files"].items()
    }


def _build(style: Style) -> Callable[[DataConfig, Split], SynthFaces]:
    def build(cfg: DataConfig, split: Split) -> SynthFaces:
        # Train and test draw from different seeds, so test faces are unseen identities.
        n = cfg.num_images if split == "train" else cfg.test_size
        seed = 2 * cfg.split_seed + (split == "test")
        return SynthFaces(style, cfg.image_size, n, seed, cfg.selected_attrs or None,
                          cfg.correlated)  # fmt: skip

    return build


register_dataset("synthfaces-celeba")(_build("celeba"))
register_dataset("synthfaces-rafd")(_build("rafd"))
