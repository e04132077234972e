"""Drawing for SynthFaces: an :class:`~stargan.data.synthfaces.faces.Identity` and a
:class:`~stargan.data.synthfaces.faces.FaceState` in, pixels out.

A face is first described as a display list of polygons and strokes in *face units* (origin
at the face centre, x right, y down; the canvas spans [-1, 1] before the identity's jitter).
The list is rasterised by Pillow on a canvas ``k`` times larger than the output and
box-reduced, which anti-aliases every edge; a lighting gradient is applied last. Every op is
tagged with the face part it draws, so the same list also yields part masks, which is how the
tests prove that an attribute only touches its own region.

Nothing here is random: all variation comes from the Identity, so drawing is a pure function.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw

from stargan.data.synthfaces.faces import (
    PARTS,
    RGB,
    FaceState,
    Identity,
    check_size,
    mix_rgb,
    scale_rgb,
)

_PART_ID = {name: i for i, name in enumerate(PARTS)}

HAIR_RGB: dict[str, RGB] = {
    "Black_Hair": (30, 25, 24),
    "Blond_Hair": (228, 194, 110),
    "Brown_Hair": (112, 66, 34),
    "Gray_Hair": (174, 174, 178),
}
PALE_TARGET: RGB = (252, 240, 234)
PALE_MIX = 0.85  # Pale_Skin moves the identity's skin 85 % of the way to PALE_TARGET
LIPSTICK: RGB = (198, 22, 50)
_TEETH = (242, 240, 232)
_CAVITY = (78, 20, 30)
_SCLERA = (246, 246, 244)
_LASH = (34, 24, 24)

# Expression looks: brows (raise, inner-end raise, arch, extra raise of the right brow),
# eyes (upper-lid opening, lower-lid opening, extra outer-corner tilt in degrees), mouth kind.
_LOOK: dict[str, tuple[tuple[float, float, float, float], tuple[float, float, float], str]] = {
    "angry": ((-0.035, -0.085, 0.0, 0.0), (0.55, 0.5, 0.0), "pressed"),
    "contemptuous": ((0.0, 0.0, 0.015, 0.06), (0.65, 0.7, 0.0), "smirk"),
    "disgusted": ((-0.05, -0.02, -0.01, 0.0), (0.45, 0.4, 0.0), "snarl"),
    "fearful": ((0.06, 0.06, 0.0, 0.0), (1.5, 1.15, 0.0), "stretched"),
    "happy": ((0.02, 0.0, 0.03, 0.0), (0.85, 0.15, 0.0), "grin"),
    "neutral": ((0.0, 0.0, 0.015, 0.0), (1.0, 0.8, 0.0), "closed"),
    "sad": ((0.0, 0.07, -0.01, 0.0), (0.7, 0.8, -9.0), "frown"),
    "surprised": ((0.08, 0.0, 0.05, 0.0), (1.5, 1.2, 0.0), "oh"),
}
_OPEN_MOUTHS = ("grin", "oh", "stretched", "snarl")
_ZOOM, _SHIFT = 1.15, -0.05  # framing: face units -> canvas, like CelebA's aligned crops


def supersample_factor(size: int) -> int:
    """How many canvas pixels per output pixel (per axis) are drawn at ``size``."""
    return 4 if size <= 64 else (3 if size <= 128 else 2)


class _Ops:
    """A display list: (kind, part, points [N, 2] in face units, colour, stroke width)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, np.ndarray, tuple[int, ...], float]] = []

    def poly(self, part: str, pts: np.ndarray, color: tuple[int, ...]) -> None:
        self.items.append(("poly", part, np.asarray(pts, dtype=np.float64), color, 0.0))

    def stroke(self, part: str, pts: np.ndarray, color: tuple[int, ...], width: float) -> None:
        self.items.append(("line", part, np.asarray(pts, dtype=np.float64), color, width))

    def ellipse(
        self,
        part: str,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        color: tuple[int, ...],
        n: int = 28,
    ) -> None:
        self.poly(part, _ellipse(cx, cy, rx, ry, 0.0, 2 * math.pi, n), color)


@functools.lru_cache(maxsize=256)
def _lin(a: float, b: float, n: int) -> np.ndarray:
    """np.linspace, cached (read-only) because the same spans recur in every face."""
    out = np.linspace(a, b, n)
    out.flags.writeable = False
    return out


def _span(a: float, b: float, n: int) -> np.ndarray:
    return a + (b - a) * _lin(0.0, 1.0, n)


@functools.lru_cache(maxsize=256)
def _unit_arc(a0: float, a1: float, n: int) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    arc = np.column_stack([np.cos(t), np.sin(t)])
    arc.flags.writeable = False
    return arc


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int):
    return _unit_arc(a0, a1, n) * (rx, ry) + (cx, cy)


def _rotate(pts: np.ndarray, cx: float, cy: float, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    d = pts - (cx, cy)
    return np.column_stack([cx + c * d[:, 0] - s * d[:, 1], cy + s * d[:, 0] + c * d[:, 1]])


class _Geom:
    """Everything derived from (identity, state) that several drawing steps share."""

    def __init__(self, idt: Identity, state: FaceState) -> None:
        attrs = state.attributes
        self.idt = idt
        self.male = "Male" in attrs
        self.old = "Young" not in attrs
        self.bangs = "Bangs" in attrs
        self.glasses = "Eyeglasses" in attrs
        self.mustache = "Mustache" in attrs
        self.skin = mix_rgb(idt.skin, PALE_TARGET, PALE_MIX) if "Pale_Skin" in attrs else idt.skin
        # Age lines: darker on light skin, relatively stronger on dark skin, so that they read
        # at 32 px on every skin without turning pale faces into etchings.
        self.crease = scale_rgb(self.skin, 0.45 + 0.25 * sum(self.skin) / 765)
        self.lip = LIPSTICK if "Wearing_Lipstick" in attrs else idt.lip_color
        base = next((rgb for name, rgb in HAIR_RGB.items() if name in attrs), idt.other_hair)
        self.hair = scale_rgb(base, 1.0 + 0.1 * idt.hair_shade)
        self.long_hair = not self.male
        self.look = _LOOK[state.expression]
        self.w, self.top = idt.face_width, idt.cranium
        self.low = idt.face_length
        self.vol = idt.hair_volume * (0.55 if self.male else 1.0)
        self.eye_y = -0.05
        self.brow_y = -0.2
        self.mouth_y = 0.31 + idt.mouth_y
        self.outline = self._outline()

    def _outline(self) -> np.ndarray:
        """Face contour: an upper half-ellipse and a superellipse jaw (squarer when Male)."""
        w, top, low, jaw = self.w, self.top, self.low, self.idt.jaw
        t = _lin(math.pi, 2 * math.pi, 25)
        upper = np.column_stack([w * np.cos(t), top * np.sin(t)])
        n = (3.1 if self.male else 2.1) + 0.35 * jaw
        taper = (0.05 if self.male else 0.2) - 0.04 * jaw
        t = _lin(0.0, math.pi, 29)
        c, s = np.cos(t), np.abs(np.sin(t))
        x = w * np.sign(c) * np.abs(c) ** (2 / n) * (1 - taper * s**2)
        y = low * s ** (2 / n)
        self._jaw_x, self._jaw_y = x[:15], y[:15]  # right half, y increasing
        return np.concatenate([upper, np.column_stack([x, y])[1:-1]])

    def width_at(self, y: float) -> float:
        """Half-width of the face contour at height y."""
        if y <= 0:
            return self.w * math.sqrt(max(0.0, 1 - (y / self.top) ** 2))
        return float(np.interp(y, self._jaw_y, self._jaw_x))


def build_ops(idt: Identity, state: FaceState) -> _Ops:
    """The display list for one face, back to front."""
    g, ops = _Geom(idt, state), _Ops()
    _clothes(ops, g)
    if g.long_hair:
        _hair_back(ops, g)
    _neck(ops, g)
    for side in (-1, 1):
        cx = side * (g.w - 0.01)
        ops.ellipse("ears", cx, 0.0, 0.06, 0.105, scale_rgb(g.skin, 0.93))
        ops.ellipse("ears", cx + side * 0.012, 0.0, 0.025, 0.06, scale_rgb(g.skin, 0.78))
    ops.poly("face", g.outline, g.skin)
    if g.old:
        _forehead_lines(ops, g)
    _hair_cap(ops, g)
    if g.bangs:
        _bangs(ops, g)
    _eyes(ops, g)
    _nose(ops, g)
    if g.old:
        _old_lines(ops, g)
    _mouth(ops, g)
    if g.mustache:
        _mustache(ops, g)
    _brows(ops, g)
    if g.glasses:
        _glasses(ops, g)
    return ops


def _clothes(ops: _Ops, g: _Geom) -> None:
    shoulders = _ellipse(0.0, 1.3, 0.98, 0.55, math.pi, 2 * math.pi, 33)
    ops.poly("clothes", np.vstack([shoulders, [(1.2, 1.2), (-1.2, 1.2)]]), g.idt.clothes_color)


def _neck(ops: _Ops, g: _Geom) -> None:
    nw = 0.2 if g.male else 0.16
    neck = np.array([(-nw, 0.2), (nw, 0.2), (nw * 1.08, 0.86), (-nw * 1.08, 0.86)])
    color = scale_rgb(g.skin, 0.88)
    ops.poly("neck", neck, color)
    if g.idt.clothes_style == 1:  # V-neck
        ops.poly("neck", np.array([(-nw * 1.08, 0.8), (nw * 1.08, 0.8), (0.0, 1.02)]), color)
    else:  # crew neck: a rounded neckline
        ops.poly("neck", _ellipse(0.0, 0.84, nw * 1.08, 0.06, 0.0, math.pi, 13), color)
    ops.ellipse("neck", 0.0, g.low - 0.015, g.w * 0.55, 0.08, scale_rgb(g.skin, 0.74))


def _wave(t: np.ndarray, style: int) -> np.ndarray:
    """Radial modulation of the hair outline: straight, wavy, curly, voluminous."""
    amp, freq = ((0.0, 1), (0.025, 9), (0.035, 19), (0.012, 5))[style]
    return 1.0 + amp * np.sin(freq * t)


def _hair_top(g: _Geom) -> np.ndarray:
    """Outer hair contour over the head, left to right."""
    t = _lin(math.pi, 2 * math.pi, 41)
    r = _wave(t, g.idt.hair_style)
    vol = g.vol * (1.6 if g.idt.hair_style == 3 and not g.male else 1.0)
    return np.column_stack([(g.w + vol) * np.cos(t) * r, -0.02 + (g.top + vol) * np.sin(t) * r])


def _hair_back(ops: _Ops, g: _Geom) -> None:
    """Long hair behind the head, falling past the jaw onto the shoulders."""
    top = _hair_top(g)
    y_end = 0.62 + 0.33 * g.idt.hair_length
    ys = _span(-0.02, y_end, 12)
    amp = (0.0, 0.02, 0.03, 0.015)[g.idt.hair_style]
    xr = abs(top[-1, 0]) + 0.06 * (ys + 0.02) / (y_end + 0.02) + amp * np.sin(ys * 25)
    bottom = _lin(1.0, -1.0, 9)
    xb = bottom * (abs(top[-1, 0]) + 0.06)
    yb = y_end - 0.04 * (1 - bottom**2) + amp * np.sin(bottom * 9)
    right = np.column_stack([xr, ys])
    left = np.column_stack([-xr, ys])[::-1]
    ops.poly("hair", np.vstack([top, right, np.column_stack([xb, yb]), left]), g.hair)
    # The far side of the hair, seen around the neck, is in shade.
    shadow = _ellipse(0.0, 0.0, g.w - 0.04, y_end - 0.06, 0.0, math.pi, 17)
    ops.poly("hair", shadow, scale_rgb(g.hair, 0.72))


def _hair_cap(ops: _Ops, g: _Geom) -> None:
    """Hair over the skull down to the hairline, the temples and (long hair) the cheeks."""
    idt = g.idt
    top = _hair_top(g)
    inset = 0.045
    y_sb = 0.3 if g.long_hair else -0.03 + 0.05 * idt.hair_length  # side hair ends here
    y_t = idt.hairline + 0.17  # temple
    x_t = g.width_at(y_t) - inset
    out_x = abs(top[0, 0])
    side_y = _span(-0.02, y_sb, 6)
    inner_y = _span(y_sb, y_t, 6)
    inner_x = np.array([g.width_at(y) - inset for y in inner_y])
    hx = _span(x_t, -x_t, 21)
    xp = idt.hair_part * 0.5 * x_t
    hy = (
        idt.hairline + 0.17 * (np.abs(hx) / x_t) ** 2.2 - 0.035 * np.exp(-(((hx - xp) / 0.07) ** 2))
    )
    pts = np.vstack(
        [
            np.column_stack([-np.full(6, out_x), side_y[::-1]]),
            top,
            np.column_stack([np.full(6, out_x), side_y]),
            np.column_stack([inner_x, inner_y]),
            np.column_stack([hx, hy]),
            np.column_stack([-inner_x, inner_y])[::-1],
        ]
    )
    ops.poly("hair", pts, g.hair)
    dark, light = scale_rgb(g.hair, 0.78), mix_rgb(g.hair, (255, 255, 255), 0.22)
    for frac in (0.55, 0.75, 0.9):  # strands and a highlight give the cap some texture
        t = _lin(math.pi * (1.1 + 0.1 * frac), math.pi * (1.9 - 0.1 * frac), 12)
        arc = np.column_stack([(g.w + g.vol) * frac * np.cos(t), -0.02 + g.top * frac * np.sin(t)])
        ops.stroke("hair", arc - (0.0, 0.04), dark, 0.015)
    hl = _ellipse(0.0, -0.02, (g.w + g.vol) * 0.8, (g.top + g.vol) * 0.88, 3.7, 4.3, 8)
    ops.stroke("hair", hl, light, 0.028)
    ops.stroke(
        "hair", np.array([(xp, idt.hairline - 0.02), (xp * 0.6, -g.top - g.vol * 0.4)]), dark, 0.02
    )


def _bangs(ops: _Ops, g: _Geom) -> None:
    """A fringe covering the forehead down to just above the brows."""
    idt = g.idt
    y_b = -0.25
    xe = g.width_at(y_b) + 0.01
    x = _span(-xe, xe, 25)
    if idt.fringe_style == 0:  # blunt cut
        y = y_b + 0.012 * np.sin(x * 40)
    elif idt.fringe_style == 1:  # swept to one side
        d = 1 if idt.hair_part >= 0 else -1
        y = y_b - 0.05 + 0.06 * (d * x / xe + 1) / 2 + 0.03 * (1 - (x / xe) ** 2)
    else:  # jagged
        y = y_b - 0.035 * (np.abs(((x / xe * 3.5) % 1.0) - 0.5) * 2)
    t = _lin(-0.2, -math.pi + 0.2, 21)
    r = _wave(t, idt.hair_style)
    topx = (g.w + g.vol * 0.5) * np.cos(t) * r
    topy = -0.02 + (g.top + g.vol * 0.5) * np.sin(t) * r
    pts = np.vstack([np.column_stack([topx, topy]), np.column_stack([x, y])])
    ops.poly("hair", pts, g.hair)


def _eyes(ops: _Ops, g: _Geom) -> None:
    idt = g.idt
    up, low, droop = g.look[1]
    if g.old:
        up *= 0.8
    es, eh = idt.eye_size, idt.eye_size * idt.eye_shape
    ri = es * 0.52
    t = _lin(0.0, math.pi, 15)
    for side in (-1, 1):
        cx, cy = side * idt.eye_spacing, g.eye_y
        tilt = -side * (idt.eye_tilt + droop)
        upper = np.column_stack([cx + es * np.cos(t), cy - eh * up * np.sin(t)])
        lower = np.column_stack([cx - es * np.cos(t), cy + eh * low * np.sin(t)])
        ops.poly("eyes", _rotate(np.vstack([upper, lower]), cx, cy, tilt), _SCLERA)
        ops.ellipse("eyes", cx, cy + 0.005, ri, ri, idt.iris, 20)
        ops.ellipse("eyes", cx, cy + 0.005, ri * 0.5, ri * 0.5, (16, 12, 12), 14)
        ops.ellipse("eyes", cx - ri * 0.35, cy - ri * 0.3, ri * 0.22, ri * 0.22, _SCLERA, 10)
        # Lids in skin colour hide whatever of the iris lies outside the eye opening.
        shift = np.array([0.0, ri + 0.03])
        lid_up = np.vstack([upper, upper[::-1] - shift])
        lid_low = np.vstack([lower, lower[::-1] + shift])
        ops.poly("eyes", _rotate(lid_up, cx, cy, tilt), g.skin)
        ops.poly("eyes", _rotate(lid_low, cx, cy, tilt), g.skin)
        ops.stroke("eyes", _rotate(upper, cx, cy, tilt), _LASH, 0.03)
        if g.old:  # eye bags and crow's feet
            by = cy + eh * low + 0.012
            bag = _ellipse(cx, by, es * 0.85, 0.06, 0.25, math.pi - 0.25, 9)
            inner = _ellipse(cx, by, es * 0.85, 0.02, math.pi - 0.25, 0.25, 9)
            ops.poly("wrinkles", np.vstack([bag, inner]), scale_rgb(g.skin, 0.75))
            ops.stroke("wrinkles", bag, g.crease, 0.026)
            ox = cx + side * (es + 0.025)
            for dy in (-0.03, 0.0, 0.03):
                ops.stroke(
                    "wrinkles",
                    np.array([(ox, cy + dy * 0.5), (ox + side * 0.045, cy + dy)]),
                    g.crease,
                    0.016,
                )


def _nose(ops: _Ops, g: _Geom) -> None:
    idt = g.idt
    tip, nw = g.eye_y + idt.nose_length, idt.nose_width
    dark = scale_rgb(g.skin, 0.7)
    if idt.nose_style == 2:
        ops.ellipse("nose", 0.0, tip - 0.01, nw * 1.1, 0.04, scale_rgb(g.skin, 0.9), 18)
    if idt.nose_style == 1:
        ops.stroke(
            "nose",
            np.array([(-0.015, g.eye_y + 0.03), (-nw, tip), (nw * 0.3, tip + 0.02)]),
            dark,
            0.02,
        )
    else:
        ops.stroke(
            "nose", np.array([(-0.02, g.eye_y + 0.04), (-nw * 0.8, tip - 0.03)]), dark, 0.016
        )
        for side in (-1, 1):
            ops.ellipse(
                "nose", side * nw * 0.55, tip + 0.01, 0.018, 0.012, scale_rgb(g.skin, 0.55), 10
            )
    if g.look[2] == "snarl":  # disgust wrinkles the nose
        for dy in (0.035, 0.065):
            arc = _ellipse(0.0, g.eye_y + dy + 0.03, 0.05, 0.02, 3.6, 5.8, 7)
            ops.stroke("wrinkles", arc, scale_rgb(g.skin, 0.58), 0.018)


def _forehead_lines(ops: _Ops, g: _Geom) -> None:
    for k in range(3):  # spread between the hairline and the brows
        y = g.idt.hairline + (g.brow_y - 0.05 - g.idt.hairline) * (0.3 + 0.3 * k)
        arc = _ellipse(0.0, y + 0.06, g.w * 0.42, 0.06, math.pi + 0.5, 2 * math.pi - 0.5, 9)
        ops.stroke("wrinkles", arc, scale_rgb(g.skin, 0.68), 0.016)


def _old_lines(ops: _Ops, g: _Geom) -> None:
    """Nasolabial folds and marionette lines: the bold cues of age at small sizes."""
    c, light = g.crease, mix_rgb(g.skin, (255, 255, 255), 0.25)
    tip, mw = g.eye_y + g.idt.nose_length, g.idt.mouth_width
    for side in (-1, 1):
        # Sunken cheeks, then each fold as a shadow beside a highlight, which keeps its
        # contrast on dark skin too.
        hollow = _rotate(
            _ellipse(side * (mw + 0.11), g.mouth_y - 0.05, 0.055, 0.12, 0, 2 * math.pi, 18),
            side * (mw + 0.11),
            g.mouth_y - 0.05,
            -side * 12,
        )
        ops.poly("wrinkles", hollow, scale_rgb(g.skin, 0.82))
        fold = np.array(
            [
                (side * (g.idt.nose_width + 0.03), tip - 0.01),
                (side * (mw + 0.05), g.mouth_y - 0.04),
                (side * (mw + 0.065), g.mouth_y + 0.05),
            ]
        )
        ops.stroke("wrinkles", fold - (side * 0.03, 0.0), light, 0.03)
        ops.stroke("wrinkles", fold, c, 0.045)
        ops.stroke(
            "wrinkles",
            np.array(
                [(side * (mw + 0.02), g.mouth_y + 0.07), (side * (mw + 0.035), g.mouth_y + 0.15)]
            ),
            c,
            0.024,
        )
    for y in (0.68, 0.76):  # neck lines
        ops.stroke("wrinkles", np.array([(-0.1, y), (0.0, y + 0.02), (0.1, y)]), c, 0.032)


def _mouth(ops: _Ops, g: _Geom) -> None:
    kind = g.look[2]
    ym, mw = g.mouth_y, g.idt.mouth_width
    u = _lin(-1.0, 1.0, 23)
    env = np.sqrt(1 - u**2)
    lip_t = 0.75 if g.old else 1.0
    if kind not in _OPEN_MOUTHS:
        w = mw * {"closed": 1.0, "pressed": 0.85, "frown": 0.9, "smirk": 0.95}[kind]
        mid = {
            "closed": ym + 0.01 * u**2,
            "pressed": ym + 0.03 * u**2,
            "frown": ym - 0.03 + 0.09 * u**2,
            "smirk": ym + 0.015 - 0.1 * np.clip(u, 0, None) ** 2,
        }[kind]
        x = u * w + (0.015 if kind == "smirk" else 0.0)
        thick = lip_t * (0.45 if kind == "pressed" else 1.0)
        top = mid - (0.035 * thick * env + 0.004)
        bot = mid + (0.045 * thick * env + 0.004)
        ops.poly(
            "mouth", np.vstack([np.column_stack([x, top]), np.column_stack([x, mid])[::-1]]), g.lip
        )
        ops.poly(
            "mouth", np.vstack([np.column_stack([x, mid]), np.column_stack([x, bot])[::-1]]), g.lip
        )
        ops.stroke("mouth", np.column_stack([x, mid]), scale_rgb(g.lip, 0.45), 0.02)
        if kind == "smirk":
            ops.stroke(
                "mouth",
                np.array([(x[-1] + 0.01, mid[-1] - 0.025), (x[-1] + 0.025, mid[-1] + 0.02)]),
                scale_rgb(g.skin, 0.6),
                0.02,
            )
        return
    box = np.sqrt(np.clip(1 - u**4, 0, None))
    if kind == "grin":
        w, c, ta, ba, teeth = mw * 1.2, ym + 0.02 - 0.05 * u**2, 0.025 * env, 0.09 * env, (0.04, 0)
    elif kind == "oh":
        w, c, ta, ba, teeth = mw * 0.5, ym + 0.035 + 0 * u, 0.085 * env, 0.085 * env, (0, 0)
    elif kind == "stretched":
        w, c, ta, ba, teeth = mw * 1.2, ym + 0.03 + 0 * u, 0.03 * box, 0.045 * box, (0.02, 0.025)
    else:  # snarl: upper lip raised on one side, wavy
        ta = (0.04 + 0.015 * np.sin(3 * math.pi * u)) * env
        w, c, ba, teeth = mw * 1.05, ym + 0.015 - 0.03 * u, 0.025 * env, (0.035, 0)
    x = u * w
    top, bot = c - ta, c + ba
    ops.poly(
        "mouth", np.vstack([np.column_stack([x, top]), np.column_stack([x, bot])[::-1]]), _CAVITY
    )
    if teeth[0]:
        t_bot = np.minimum(top + teeth[0], bot)
        ops.poly(
            "mouth",
            np.vstack([np.column_stack([x, top]), np.column_stack([x, t_bot])[::-1]]),
            _TEETH,
        )
    if teeth[1]:
        t_top = np.maximum(bot - teeth[1], top)
        ops.poly(
            "mouth",
            np.vstack([np.column_stack([x, t_top]), np.column_stack([x, bot])[::-1]]),
            _TEETH,
        )
    lt = 0.028 * lip_t * env + 0.003
    ops.poly(
        "mouth", np.vstack([np.column_stack([x, top - lt]), np.column_stack([x, top])[::-1]]), g.lip
    )
    ops.poly(
        "mouth", np.vstack([np.column_stack([x, bot]), np.column_stack([x, bot + lt])[::-1]]), g.lip
    )


def _mustache(ops: _Ops, g: _Geom) -> None:
    mw, y = g.idt.mouth_width * 1.1, g.mouth_y - 0.07
    u = _lin(-1.0, 1.0, 17)
    mid = y + 0.05 * u**4
    thick = 0.034 * np.sqrt(1 - u**2) + 0.014
    pts = np.vstack(
        [np.column_stack([u * mw, mid - thick]), np.column_stack([u * mw, mid + thick])[::-1]]
    )
    ops.poly("facial_hair", pts, mix_rgb(g.hair, (24, 16, 14), 0.6))  # darker than any hair


def _brows(ops: _Ops, g: _Geom) -> None:
    idt = g.idt
    raise_, inner, arch, right = g.look[0]
    thick = idt.brow_thickness * (1.45 if g.male else 1.0) * (1.15 if inner < -0.05 else 1.0)
    droop = 0.035 if g.old else 0.0  # brows thin out and sag at the outer ends with age
    thick *= 0.75 if g.old else 1.0
    for side in (-1, 1):
        r = raise_ + (right if side == 1 else 0.0)
        xi = side * (idt.eye_spacing - idt.eye_size * 0.9)
        xo = side * (idt.eye_spacing + idt.eye_size * 1.2)
        y0 = g.brow_y - r
        pts = np.array(
            [(xi, y0 - inner), ((xi + xo) / 2, y0 - arch - inner * 0.35), (xo, y0 + 0.01 + droop)]
        )
        ops.stroke("brows", pts, idt.brow_color, thick)
    if inner < -0.05:  # a frown furrow between the brows
        for side in (-1, 1):
            ops.stroke(
                "wrinkles",
                np.array([(side * 0.028, g.brow_y - 0.02), (side * 0.02, g.brow_y + 0.05)]),
                scale_rgb(g.skin, 0.6),
                0.016,
            )


def _glasses(ops: _Ops, g: _Geom) -> None:
    idt = g.idt
    es, color, width = idt.eye_size, idt.glasses_color, 0.04
    t = _lin(0.0, 2 * math.pi, 33)
    rims = []
    for side in (-1, 1):
        cx, cy = side * idt.eye_spacing, g.eye_y
        if idt.glasses_shape == 0:  # round
            rim = np.column_stack([cx + es * 1.45 * np.cos(t), cy + es * 1.3 * np.sin(t)])
        else:  # rectangular: a superellipse
            c, s = np.cos(t), np.sin(t)
            rim = np.column_stack(
                [
                    cx + es * 1.6 * np.sign(c) * np.abs(c) ** 0.5,
                    cy + es * 1.1 * np.sign(s) * np.abs(s) ** 0.5,
                ]
            )
        rims.append(rim)
        ops.poly("glasses", rim, (225, 236, 250, 70))
        ops.stroke("glasses", rim, color, width)
        outer = rim[0] if side == 1 else rim[16]
        ops.stroke("glasses", np.array([outer, (side * (g.w + 0.01), g.eye_y - 0.03)]), color, 0.03)
    bridge = np.array([rims[0][0], (0.0, g.eye_y - 0.03), rims[1][16]])
    ops.stroke("glasses", bridge, color, 0.03)


def _background(idt: Identity, canvas: int) -> Image.Image:
    kind, c1, c2 = idt.background, idt.bg_color1, idt.bg_color2
    if kind == "solid":
        return Image.new("RGB", (canvas, canvas), c1)
    ramp = _span(0.0, 1.0, canvas)
    a, b = np.asarray(c1, np.float32), np.asarray(c2, np.float32)
    if kind in ("vgradient", "hgradient", "bokeh"):
        line = (a + (b - a) * ramp[:, None]).astype(np.uint8)  # [canvas, 3]
        shape = (canvas, 1, 3) if kind != "hgradient" else (1, canvas, 3)
        # A one-pixel strip stretched by Pillow: much faster than copying a broadcast array.
        img = Image.fromarray(line.reshape(shape)).resize((canvas, canvas), Image.NEAREST)
    else:
        img = Image.new("RGB", (canvas, canvas), c1)
    draw = ImageDraw.Draw(img, "RGBA")
    if kind == "stripes":
        n = 3 + int(idt.bg_param * 6)
        period, ang = canvas / n, (idt.bg_param - 0.5) * 1.2
        dx = math.tan(ang) * canvas
        for i in range(-n, 2 * n):
            x0 = i * period
            draw.polygon(
                [(x0, 0), (x0 + period / 2, 0), (x0 + period / 2 + dx, canvas), (x0 + dx, canvas)],
                fill=c2,
            )
    elif kind == "split":
        x0, x1 = canvas * (0.2 + 0.6 * idt.bg_param), canvas * (0.8 - 0.6 * idt.bg_param)
        draw.polygon([(x0, 0), (canvas, 0), (canvas, canvas), (x1, canvas)], fill=c2)
    elif kind == "bokeh":
        rng = np.random.default_rng(idt.bg_seed)
        light = mix_rgb(c1, (255, 255, 255), 0.5)
        for _ in range(7):
            x, y = rng.uniform(0, canvas, 2)
            r = rng.uniform(0.04, 0.12) * canvas
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(*light, int(rng.integers(50, 110))))
    return img


def _transform(idt: Identity, canvas: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Face units -> canvas pixels: rotation, scale and shift of the identity's jitter."""
    half = canvas / 2
    s = idt.scale * half * _ZOOM
    a = math.radians(idt.rotation)
    m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * s
    return m.T, np.array([half * (1 + idt.dx), half * (1 + idt.dy + _SHIFT)]), s


def _raster(img: Image.Image, ops: _Ops, idt: Identity, ids: bool) -> None:
    """Draw ``ops`` onto ``img``: colours, or part ids (no blending) when ``ids``."""
    mt, off, s = _transform(idt, img.width)
    opaque = ImageDraw.Draw(img)
    blend = opaque if ids else ImageDraw.Draw(img, "RGBA")  # for translucent colours only
    # One matrix product for the whole list: per-op numpy calls dominate the cost otherwise.
    flat = (np.concatenate([item[2] for item in ops.items]) @ mt + off).ravel().tolist()
    pos = 0
    for kind, part, pts, color, width in ops.items:
        fill = _PART_ID[part] if ids else color
        draw = blend if len(color) == 4 else opaque
        xy, pos = flat[pos : pos + 2 * len(pts)], pos + 2 * len(pts)
        if kind == "poly":
            draw.polygon(xy, fill=fill)
            continue
        px = max(1, round(width * s))
        draw.line(xy, fill=fill, width=px, joint="curve" if px > 3 else None)
        if px > 2:  # round caps
            r = px / 2
            for x, y in ((xy[0], xy[1]), (xy[-2], xy[-1])):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def draw_face(idt: Identity, state: FaceState, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: supersampled drawing, box-reduced, then lit."""
    k = supersample_factor(size)
    canvas = _background(idt, size * k)
    _raster(canvas, build_ops(idt, state), idt, ids=False)
    arr = np.asarray(canvas.reduce(k)) if k > 1 else np.asarray(canvas)
    if idt.light_strength == 0:
        return arr.copy()
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    gain = 1 + idt.light_strength * (
        math.cos(idt.light_angle) * ramp[None, :] + math.sin(idt.light_angle) * ramp[:, None]
    )
    return np.clip(arr * gain[:, :, None] + 0.5, 0, 255).astype(np.uint8)


def draw_parts(idt: Identity, state: FaceState, size: int, parts: Iterable[str]) -> np.ndarray:
    """bool [size, size]: output pixels whose footprint shows any of ``parts`` (topmost op)."""
    k = supersample_factor(size)
    img = Image.new("L", (size * k, size * k), 0)
    _raster(img, build_ops(idt, state), idt, ids=True)
    ids = np.asarray(img)
    hit = np.isin(ids, [_PART_ID[p] for p in parts])
    return hit.reshape(size, k, size, k).any(axis=(1, 3))


def render(identity: Identity, state: FaceState, size: int) -> np.ndarray:
    """The face ``identity`` shows in ``state``: uint8 [size, size, 3], a pure function.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = render(sample_identity(rng, "celeba"), FaceState({"Blond_Hair"}), 64)
        >>> img.shape, img.dtype
        ((64, 64, 3), dtype('uint8'))
    """
    check_size(size)
    return draw_face(identity, state, size)


def part_mask(identity: Identity, state: FaceState, size: int, parts: Iterable[str]) -> np.ndarray:
    """bool [size, size]: pixels whose area shows any of ``parts`` (names from :data:`PARTS`),
    e.g. to measure how well a translation preserves the background."""
    check_size(size)
    parts = list(parts)
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        raise ValueError(f"unknown face parts {bad}; valid parts: {', '.join(PARTS)}")
    return draw_parts(identity, state, size, parts)
