"""SynthFaces' faces: what a face is (an :class:`Identity` fixed under translation and a
:class:`FaceState` that labels control), the label names, and how both are sampled. Nothing here
draws: :mod:`stargan.data.synthfaces.render` turns an identity and a state into pixels."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

from stargan.data.labels import LabelError, LabelSpec

Style = Literal["celeba", "rafd"]
STYLES: tuple[str, ...] = ("celeba", "rafd")
STYLE_CODE = {"celeba": 1, "rafd": 2}

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
PARTS: tuple[str, ...] = (
    "background", "clothes", "neck", "hair", "ears", "face", "wrinkles", "nose", "eyes",
    "mouth", "facial_hair", "brows", "glasses",
)  # fmt: skip
"""Face parts in the order the part map numbers them (0 = background)."""

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

ATTRIBUTE_SPEC = LabelSpec(CELEBA_ATTRIBUTES, "binary")
EXPRESSION_SPEC = LabelSpec(EXPRESSIONS, "categorical")
MIN_SIZE, MAX_SIZE = 16, 256
BACKGROUNDS: tuple[str, ...] = ("solid", "vgradient", "hgradient", "stripes", "split", "bokeh")
RGB = tuple[int, int, int]


def mix_rgb(a: Iterable[float], b: Iterable[float], t: float) -> RGB:
    """The colour a fraction ``t`` of the way from ``a`` to ``b``."""
    # int(round()) because numpy < 2 rounds numpy scalars to floats.
    mixed = (int(round((1 - t) * x + t * y)) for x, y in zip(a, b, strict=True))  # noqa: RUF046
    return tuple(mixed)  # type: ignore[return-value]


def scale_rgb(c: Iterable[float], f: float, add: float = 0.0) -> RGB:
    """``c`` times ``f`` plus ``add``, clipped to [0, 255]."""
    return tuple(int(min(255, max(0, round(x * f + add)))) for x in c)  # type: ignore[return-value]


def hsv(h: float, s: float, v: float) -> RGB:
    """An RGB triple from HSV in [0, 1] (used when sampling identities)."""
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown SynthFaces style {style!r}; expected one of {STYLES}")


def check_size(size: int) -> None:
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
            ATTRIBUTE_SPEC.index(name)
        EXPRESSION_SPEC.index(self.expression)
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
        ATTRIBUTE_SPEC.index(name)
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


_IRISES = ((92, 58, 32), (58, 38, 22), (72, 122, 182), (82, 132, 84), (132, 102, 52),
           (118, 130, 142))  # fmt: skip


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


def _scene(rng: np.random.Generator, style: Style) -> dict[str, Any]:
    """Clothes, background, framing and lighting: varied for celeba, a studio's for rafd."""
    u = rng.uniform
    if style == "celeba":
        return {
            "clothes_color": hsv(u(), u(0.1, 0.8), u(0.15, 0.95)),
            "clothes_style": int(rng.integers(2)),
            "background": _pick(rng, BACKGROUNDS),
            "bg_color1": hsv(u(), u(0.05, 0.6), u(0.3, 0.97)),
            "bg_color2": hsv(u(), u(0.05, 0.6), u(0.3, 0.97)),
            "bg_param": u(),
            "bg_seed": int(rng.integers(2**31)),
            "dx": u(-0.05, 0.05),
            "dy": u(-0.04, 0.05),
            "rotation": u(-8, 8),
            "scale": u(0.92, 1.06),
            "light_angle": u(0, 2 * math.pi),
            "light_strength": u(0, 0.18),
        }
    # RaFD: studio conditions, black shirts
    return {
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


def sample_identity(rng: np.random.Generator, style: Style) -> Identity:
    """A random identity in the given style (rafd: frontal, centred, plain light background).

    Example:
        >>> idt = sample_identity(np.random.default_rng(0), "rafd")
        >>> idt.rotation, idt.background
        (0.0, 'solid')
    """
    check_style(style)
    u = rng.uniform
    skin = _skin(rng)
    iris = _pick(rng, _IRISES)
    brow = _jitter(rng, scale_rgb(skin, u(0.22, 0.4)), 6)  # always darker than the skin
    lip = _jitter(rng, mix_rgb(skin, (176, 70, 74), 0.45), 6)
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
    f |= _scene(rng, style)  # drawn after the face: the order of draws fixes every item
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
    check_style(style)
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
