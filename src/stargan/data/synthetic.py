"""SynthFaces: procedurally rendered cartoon faces with exact ground truth for every translation.

Two styles share one renderer, so they differ in distribution the way CelebA and RaFD do:

- ``"celeba"``: varied backgrounds and patterns, position/rotation/scale jitter, a lighting
  gradient; binary attributes with CelebA's names (:data:`CELEBA_ATTRIBUTES`).
- ``"rafd"``: frontal, centred, plain light background, black shirts; each subject shows all 8
  RaFD expressions (:data:`EXPRESSIONS`), attributes fixed per subject.

A face is ``render(identity, state, size)``: the :class:`Identity` holds everything kept fixed
under translation, the :class:`FaceState` what labels control. Rendering is a pure function,
so the true counterfactual of any image under any target label is one call away
(:meth:`SynthFaces.counterfactual`). Use it in memory (:class:`SynthFaces`) or exported in the
official CelebA / RaFD layouts (:func:`export_celeba`, :func:`export_rafd`), with the factors
saved alongside so :func:`load_ground_truth` can rebuild ground truth for exported files.

Smiling and the expression are one thing: ``"Smiling"`` is CelebA's name for the ``"happy"``
expression. A state keeps them in step (see :class:`FaceState`); celeba-style states are
``"neutral"`` or ``"happy"``; giving a celeba face an RaFD expression replaces its brows, eyes
and mouth.

Example:
    >>> ds = SynthFaces("celeba", size=32, n=100, seed=0)
    >>> x, c = ds[0]                      # x: [3, 32, 32] in [-1, 1], c: [5] multi-hot
    >>> m = ds.label_spec.index("Male")
    >>> target = c.clone(); target[m] = 1 - c[m]                # flip Male
    >>> y_true = ds.counterfactual(0, target)   # what a perfect G(x, target) would output
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from stargan.config import DataConfig
from stargan.data import synthetic_render as _draw
from stargan.data.labels import LabelError, LabelSpec
from stargan.data.registry import Split, register_dataset

Style = Literal["celeba", "rafd"]
STYLES: tuple[str, ...] = ("celeba", "rafd")
_STYLE_CODE = {"celeba": 1, "rafd": 2}

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair", "Male",
    "Mustache", "Pale_Skin", "Smiling", "Wearing_Lipstick", "Young",
)  # fmt: skip
"""Every binary attribute the renderer draws, in the column order of list_attr_celeba.txt."""
HAIR_COLOURS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
"""Mutually exclusive; a face may have none of them (red, auburn or ginger hair)."""
EXPRESSIONS: tuple[str, ...] = (
    "angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised",
)  # fmt: skip
"""RaFD's 8 expressions; sorted, so the position is RaFD's class index."""
DEFAULT_SELECTED_ATTRS: tuple[str, ...] = (
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Male",
    "Young",
)
PARTS = _draw.PARTS

_SEE_THROUGH = frozenset({"glasses"})  # tinted lenses show whatever changes behind them
ATTRIBUTE_PARTS: dict[str, frozenset[str]] = {
    **{h: frozenset({"hair", "facial_hair"}) | _SEE_THROUGH for h in HAIR_COLOURS},
    "Bangs": frozenset({"hair"}) | _SEE_THROUGH,
    "Eyeglasses": frozenset({"glasses"}),
    "Male": frozenset(
        {
            "hair",
            "face",
            "neck",
            "ears",
            "brows",
            "wrinkles",
            "eyes",
            "nose",
            "mouth",
            "facial_hair",
        }
    )
    | _SEE_THROUGH,
    "Mustache": frozenset({"facial_hair"}) | _SEE_THROUGH,
    "Pale_Skin": frozenset({"face", "neck", "ears", "eyes", "nose", "mouth", "wrinkles"})
    | _SEE_THROUGH,
    "Smiling": frozenset({"mouth", "eyes", "brows"}) | _SEE_THROUGH,
    "Wearing_Lipstick": frozenset({"mouth"}) | _SEE_THROUGH,
    "Young": frozenset({"wrinkles", "eyes", "mouth", "brows"}) | _SEE_THROUGH,
}
"""The face parts each attribute may change (what an ideal translation may touch). Male
moves the jaw and the hair, so whatever lay under the long side hair can appear; tinted
lenses show changes behind them. Background and clothes never change."""
EXPRESSION_PARTS = frozenset({"brows", "eyes", "mouth", "wrinkles"}) | _SEE_THROUGH
"""The face parts an expression change may touch."""

_ATTR_SPEC = LabelSpec(CELEBA_ATTRIBUTES, "binary")
_EXPR_SPEC = LabelSpec(EXPRESSIONS, "categorical")
MIN_SIZE, MAX_SIZE = 16, 256
BACKGROUNDS: tuple[str, ...] = ("solid", "vgradient", "hgradient", "stripes", "split", "bokeh")
RGB = tuple[int, int, int]


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown SynthFaces style {style!r}; expected one of {STYLES}")


def _check_size(size: int) -> None:
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"SynthFaces size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}"
        )


@dataclass(frozen=True)
class Identity:
    """Everything about a face that translation keeps fixed (lengths in face units, where the
    canvas spans [-1, 1]; colours are RGB 0-255). Build with :func:`sample_identity`.

    Example:
        >>> idt = sample_identity(np.random.default_rng(0), "celeba")
        >>> Identity.from_dict(json.loads(json.dumps(idt.to_dict()))) == idt
        True
    """

    face_width: float  # half-width of the head
    cranium: float  # height of the skull above the face centre
    face_length: float  # chin height below the face centre
    jaw: float  # -1 (pointy) .. 1 (square), on top of the Male shape
    skin: RGB
    eye_spacing: float  # half the distance between the eye centres
    eye_size: float  # half-width of an eye
    eye_shape: float  # eye height / width
    eye_tilt: float  # degrees, outer corners up
    iris: RGB
    brow_color: RGB
    brow_thickness: float
    nose_length: float
    nose_width: float
    nose_style: int  # 0 line and nostrils, 1 hooked line, 2 round tip
    mouth_width: float
    mouth_y: float
    lip_color: RGB  # natural lips (Wearing_Lipstick replaces it)
    hair_style: int  # 0 straight, 1 wavy, 2 curly, 3 voluminous
    hair_volume: float
    hair_part: float  # -1 .. 1, left to right
    hairline: float  # y of the hairline at the centre
    fringe_style: int  # 0 blunt, 1 swept, 2 jagged (drawn when Bangs)
    hair_length: float  # 0 .. 1 within the length range of the current gender
    hair_shade: float  # -1 .. 1 brightness within the hair colour
    other_hair: RGB  # hair colour when no selected colour applies (red, auburn, ginger)
    glasses_shape: int  # 0 round, 1 rectangular (drawn when Eyeglasses)
    glasses_color: RGB
    clothes_color: RGB
    clothes_style: int  # 0 crew neck, 1 V-neck
    background: str  # solid, vgradient, hgradient, stripes, split, bokeh
    bg_color1: RGB
    bg_color2: RGB
    bg_param: float
    bg_seed: int
    dx: float  # position jitter (fraction of half the image)
    dy: float
    rotation: float  # degrees
    scale: float
    light_angle: float  # radians; direction in which the lighting gradient brightens
    light_strength: float  # 0 = flat lighting

    def __post_init__(self) -> None:
        choices = {
            "nose_style": range(3), "hair_style": range(4), "fringe_style": range(3),
            "glasses_shape": range(2), "clothes_style": range(2), "background": BACKGROUNDS,
        }  # fmt: skip
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"Identity.{name} must be one of {list(valid)}, got {getattr(self, name)!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain dict (colours become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Identity:
        """Inverse of :meth:`to_dict`; missing or unknown keys are named in the error."""
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(d)), sorted(set(d) - names)
        if missing or unknown:
            raise ValueError(f"Identity dict: missing keys {missing}, unknown keys {unknown}")
        return cls(
            **{k: tuple(int(x) for x in v) if isinstance(v, list) else v for k, v in d.items()}
        )


@dataclass(frozen=True)
class FaceState:
    """What labels control: the active CelebA attributes and the expression.

    ``attributes`` may be given as any collection of names or a ``{name: bool}`` dict; it is
    stored as a frozenset. Hair colours are exclusive. ``Smiling`` is CelebA's name for the
    ``"happy"`` expression, so the two are kept in step: ``"happy"`` adds Smiling, Smiling with
    the default ``"neutral"`` means ``"happy"``, and Smiling with any other expression is an
    error.

    Example:
        >>> FaceState({"Male", "Smiling"}).expression
        'happy'
    """

    attributes: frozenset[str] = frozenset()
    expression: str = "neutral"

    def __post_init__(self) -> None:
        attrs = self.attributes
        if isinstance(attrs, str):
            raise LabelError(f"attributes must be a collection of names, got the string {attrs!r}")
        if isinstance(attrs, Mapping):
            attrs = {k for k, v in attrs.items() if v}
        attrs = frozenset(attrs)
        for name in attrs:
            _ATTR_SPEC.index(name)
        _EXPR_SPEC.index(self.expression)
        hair = sorted(attrs.intersection(HAIR_COLOURS))
        if len(hair) > 1:
            raise LabelError(f"hair colours are mutually exclusive, got {hair}")
        expression = self.expression
        if expression == "happy":
            attrs = attrs | {"Smiling"}
        elif "Smiling" in attrs:
            if expression != "neutral":
                raise LabelError(
                    f"Smiling is the CelebA name for the 'happy' expression; it cannot be "
                    f"combined with expression {expression!r}"
                )
            expression = "happy"
        object.__setattr__(self, "attributes", attrs)
        object.__setattr__(self, "expression", expression)

    def with_attribute(self, name: str, on: bool) -> FaceState:
        """This state with one attribute set or cleared; setting a hair colour clears the
        others, setting Smiling makes the expression happy, clearing it makes it neutral."""
        _ATTR_SPEC.index(name)
        attrs, expression = set(self.attributes), self.expression
        if on and name in HAIR_COLOURS:
            attrs -= set(HAIR_COLOURS)
        if name == "Smiling":
            expression = "happy" if on else ("neutral" if expression == "happy" else expression)
            attrs.discard("Smiling")
        elif on:
            attrs.add(name)
        else:
            attrs.discard(name)
        return FaceState(frozenset(attrs), expression)

    def with_expression(self, expression: str) -> FaceState:
        """This state showing ``expression`` (Smiling follows: on for happy, off otherwise)."""
        return FaceState(self.attributes - {"Smiling"}, expression)

    def to_dict(self) -> dict[str, Any]:
        return {"attributes": sorted(self.attributes), "expression": self.expression}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaceState:
        return cls(frozenset(d["attributes"]), d["expression"])


def _skin(rng: np.random.Generator) -> RGB:
    """A skin tone from light to dark; never as pale as Pale_Skin (that is a label)."""
    stops = np.array([(228, 186, 152), (200, 148, 110), (160, 108, 74), (122, 80, 56)], float)
    t = rng.uniform(0, len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    c = stops[i] + (stops[i + 1] - stops[i]) * (t - i) + rng.uniform(-6, 6, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, c: Sequence[int], amount: float) -> RGB:
    return tuple(int(np.clip(v + rng.uniform(-amount, amount), 0, 255)) for v in c)  # type: ignore


def sample_identity(rng: np.random.Generator, style: Style) -> Identity:
    """A random identity in the given style (rafd: frontal, centred, plain light background).

    Example:
        >>> idt = sample_identity(np.random.default_rng(0), "rafd")
        >>> idt.rotation, idt.background
        (0.0, 'solid')
    """
    _check_style(style)
    u = rng.uniform
    skin = _skin(rng)
    iris = _pick(
        rng,
        [
            (92, 58, 32),
            (58, 38, 22),
            (72, 122, 182),
            (82, 132, 84),
            (132, 102, 52),
            (118, 130, 142),
        ],
    )
    brow = _jitter(rng, _draw._scale(skin, u(0.22, 0.4)), 6)  # always darker than the skin
    lip = _jitter(rng, _draw._mix(skin, (176, 70, 74), 0.45), 6)
    other = _jitter(rng, _pick(rng, [(190, 72, 36), (214, 112, 52), (150, 46, 34)]), 10)
    glasses = _pick(rng, [(22, 22, 24), (70, 40, 24), (26, 34, 80), (110, 20, 30)])
    f = {
        "face_width": u(0.4, 0.47),
        "cranium": u(0.56, 0.64),
        "face_length": u(0.52, 0.6),
        "jaw": u(-1, 1),
        "skin": skin,
        "eye_spacing": u(0.18, 0.215),
        "eye_size": u(0.095, 0.115),
        "eye_shape": u(0.45, 0.65),
        "eye_tilt": u(-4, 8),
        "iris": iris,
        "brow_color": brow,
        "brow_thickness": u(0.034, 0.046),
        "nose_length": u(0.14, 0.2),
        "nose_width": u(0.045, 0.07),
        "nose_style": int(rng.integers(3)),
        "mouth_width": u(0.12, 0.155),
        "mouth_y": u(-0.02, 0.02),
        "lip_color": lip,
        "hair_style": int(rng.integers(4)),
        "hair_volume": u(0.03, 0.1),
        "hair_part": u(-1, 1),
        "hairline": u(-0.47, -0.4),
        "fringe_style": int(rng.integers(3)),
        "hair_length": u(0, 1),
        "hair_shade": u(-1, 1),
        "other_hair": other,
        "glasses_shape": int(rng.integers(2)),
        "glasses_color": glasses,
    }
    if style == "celeba":
        f |= {
            "clothes_color": _draw.hsv(u(), u(0.1, 0.8), u(0.15, 0.95)),
            "clothes_style": int(rng.integers(2)),
            "background": _pick(rng, BACKGROUNDS),
            "bg_color1": _draw.hsv(u(), u(0.05, 0.6), u(0.3, 0.97)),
            "bg_color2": _draw.hsv(u(), u(0.05, 0.6), u(0.3, 0.97)),
            "bg_param": u(),
            "bg_seed": int(rng.integers(2**31)),
            "dx": u(-0.05, 0.05),
            "dy": u(-0.04, 0.05),
            "rotation": u(-8, 8),
            "scale": u(0.92, 1.06),
            "light_angle": u(0, 2 * math.pi),
            "light_strength": u(0, 0.18),
        }
    else:  # RaFD: studio conditions, black shirts
        f |= {
            "clothes_color": (28, 28, 30),
            "clothes_style": 0,
            "background": "solid",
            "bg_color1": (244, 244, 241),
            "bg_color2": (244, 244, 241),
            "bg_param": 0.0,
            "bg_seed": 0,
            "dx": 0.0,
            "dy": 0.0,
            "rotation": 0.0,
            "scale": 1.0,
            "light_angle": 0.0,
            "light_strength": 0.0,
        }
    return Identity(**{k: float(v) if isinstance(v, float) else v for k, v in f.items()})


def _correlated_attrs(rng: np.random.Generator) -> set[str]:
    """CelebA-like co-occurrence (gray hair with age, blond hair, bangs and lipstick with women,
    glasses with men and age); the marginals come out close to CelebA's (docs/synthfaces.md)."""
    r = rng.random
    male, young = r() < 0.42, r() < 0.78
    if not young:
        hair_p = (0.25, 0.06, 0.27, 0.17, 0.25)
    elif male:
        hair_p = (0.3, 0.05, 0.3, 0.02, 0.33)
    else:
        hair_p = (0.22, 0.28, 0.25, 0.01, 0.24)
    attrs = {"Male"} if male else set()
    if young:
        attrs.add("Young")
    hair = rng.choice(5, p=hair_p)
    if hair < 4:
        attrs.add(HAIR_COLOURS[hair])
    probs = {
        "Bangs": 0.05 if male else 0.22,
        "Eyeglasses": 0.02 + 0.08 * male + 0.08 * (not young),
        "Pale_Skin": 0.06 if (young and not male) else 0.02,
        "Smiling": 0.45 if male else 0.52,
        "Mustache": 0.12 if male else 0.0,
        "Wearing_Lipstick": 0.005 if male else 0.8,
    }
    attrs.update(name for name, p in probs.items() if r() < p)
    return attrs


def sample_state(rng: np.random.Generator, style: Style, correlated: bool = False) -> FaceState:
    """Random labels. celeba: attributes (exactly one hair colour or none, each with p = 1/5;
    other attributes p = 1/2, or CelebA-like co-occurrence when ``correlated``), expression
    neutral or happy following Smiling. rafd: a subject's attributes (always correlated, no
    glasses, no smile) and a uniformly random expression.

    Example:
        >>> sample_state(np.random.default_rng(0), "celeba").expression in ("neutral", "happy")
        True
    """
    _check_style(style)
    if style == "rafd" or correlated:
        attrs = _correlated_attrs(rng)
    else:
        hair = int(rng.integers(5))
        others = [a for a in CELEBA_ATTRIBUTES if a not in HAIR_COLOURS]
        attrs = {a for a, on in zip(others, rng.random(len(others)) < 0.5, strict=True) if on}
        if hair < 4:
            attrs.add(HAIR_COLOURS[hair])
    if style == "rafd":
        expression = EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))]
        return FaceState(frozenset(attrs - {"Eyeglasses", "Smiling"}), expression)
    return FaceState(frozenset(attrs))


def render(identity: Identity, state: FaceState, size: int) -> np.ndarray:
    """The face ``identity`` shows in ``state``: uint8 [size, size, 3], a pure function.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = render(sample_identity(rng, "celeba"), FaceState({"Blond_Hair"}), 64)
        >>> img.shape, img.dtype
        ((64, 64, 3), dtype('uint8'))
    """
    _check_size(size)
    return _draw.draw_face(identity, state, size)


def part_mask(identity: Identity, state: FaceState, size: int, parts: Iterable[str]) -> np.ndarray:
    """bool [size, size]: pixels whose area shows any of ``parts`` (names from :data:`PARTS`),
    e.g. to measure how well a translation preserves the background."""
    _check_size(size)
    parts = list(parts)
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        raise ValueError(f"unknown face parts {bad}; valid parts: {', '.join(PARTS)}")
    return _draw.draw_parts(identity, state, size, parts)


def _item_rngs(seed: int, index: int, style: str) -> tuple[np.random.Generator, ...]:
    """Independent generators for an item's identity and state: (seed, index, style) alone
    decide an item, so order, workers and dataset length do not matter."""
    base = [seed, index, _STYLE_CODE[style]]
    return tuple(np.random.default_rng(np.random.SeedSequence([*base, k])) for k in (0, 1))


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float().div(127.5).sub(1.0)  # [3, S, S]


class SynthFaces(torch.utils.data.Dataset):
    """SynthFaces in memory: item i is rendered from (seed, i, style) alone, no disk.

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
        _check_style(style)
        _check_size(size)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"SynthFaces needs n >= 1 images, got {n!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"SynthFaces seed must be a non-negative int, got {seed!r}")
        self.style, self.size, self.n, self.seed, self.correlated = style, size, n, seed, correlated
        if style == "celeba":
            names = tuple(DEFAULT_SELECTED_ATTRS if selected_attrs is None else selected_attrs)
            for name in names:
                _ATTR_SPEC.index(name)
            self.label_spec = LabelSpec(names, "binary")
        else:
            if selected_attrs is not None:
                raise ValueError(
                    "selected_attrs applies to style 'celeba'; rafd labels are the 8 expressions"
                )
            self.label_spec = LabelSpec(EXPRESSIONS, "categorical")
        self._cache: torch.Tensor | None = None
        if n * size * size * 3 <= cache_mb * 2**20:
            self._cache = torch.zeros((n, size, size, 3), dtype=torch.uint8)
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
        if self.label_spec.kind == "binary":
            return torch.tensor([float(a in state.attributes) for a in self.label_spec.names])
        out = torch.zeros(len(EXPRESSIONS))
        out[EXPRESSIONS.index(state.expression)] = 1.0
        return out

    def image_uint8(self, i: int) -> np.ndarray:
        """Item i as uint8 [size, size, 3] (from the cache when there is one)."""
        i = self._index(i)
        if self._cache is not None and self._cached[i]:
            return self._cache[i].numpy()
        img = render(*self._item(i), self.size)
        if self._cache is not None:
            self._cache[i] = torch.from_numpy(img)
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
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: was {export_dir} written by export_celeba or export_rafd?"
        )
    meta = json.loads(path.read_text())
    if meta.get("format") != "synthfaces-1":
        raise ValueError(f"{path}: expected format 'synthfaces-1', got {meta.get('format')!r}")
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
