"""Contact sheets of SynthFaces for the docs: identities x attributes, identities x expressions.

    PYTHONPATH=src python scripts/contact_sheet.py            # writes the two PNGs into docs/

Attribute sheet: each row is one celeba-style identity; the first column is the sampled face,
then each attribute is applied the way StarGAN's test targets are built (a hair colour is set
and clears the others; any other attribute is flipped). Expression sheet: rafd-style subjects,
then celeba-style identities given RaFD expressions (the joint-training case), alternating
women and men.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stargan.data.synthetic import (
    CELEBA_ATTRIBUTES,
    EXPRESSIONS,
    HAIR_COLOURS,
    render,
    sample_identity,
    sample_state,
)

SHORT = {"Wearing_Lipstick": "Lipstick", "Eyeglasses": "Glasses", "Pale_Skin": "Pale"}


def _sheet(rows: list[list[np.ndarray]], titles: list[str], size: int) -> Image.Image:
    header, font = 16, ImageFont.load_default(size=10)
    sheet = Image.new("RGB", (len(titles) * size, header + len(rows) * size), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(titles):
        w = draw.textlength(title, font=font)
        draw.text((j * size + (size - w) / 2, 2), title, fill="black", font=font)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            sheet.paste(Image.fromarray(img), (j * size, header + i * size))
    return sheet


def attribute_sheet(n_rows: int, size: int, seed: int) -> Image.Image:
    rows = []
    for r in range(n_rows):
        rng = np.random.default_rng([seed, r])
        identity, state = (
            sample_identity(rng, "celeba"),
            sample_state(rng, "celeba", correlated=True),
        )
        row = [render(identity, state, size)]
        for attr in CELEBA_ATTRIBUTES:
            on = attr in HAIR_COLOURS or attr not in state.attributes
            row.append(render(identity, state.with_attribute(attr, on), size))
        rows.append(row)
    titles = ["input"] + [
        SHORT.get(a, a.replace("_Hair", "")) + ("" if a in HAIR_COLOURS else " ±")
        for a in CELEBA_ATTRIBUTES
    ]
    return _sheet(rows, titles, size)


def expression_sheet(n_rafd: int, n_celeba: int, size: int, seed: int) -> Image.Image:
    rows = []
    for r in range(n_rafd + n_celeba):
        style = "rafd" if r < n_rafd else "celeba"
        rng = np.random.default_rng([seed, 100 + r])
        identity, state = sample_identity(rng, style), sample_state(rng, style, correlated=True)
        state = state.with_attribute("Male", r % 2 == 1)  # alternate women and men
        rows.append([render(identity, state.with_expression(e), size) for e in EXPRESSIONS])
    return _sheet(rows, list(EXPRESSIONS), size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for the two PNGs")
    parser.add_argument("--size", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3, help="which identities (3: a varied set)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    attribute_sheet(6, args.size, args.seed).save(
        out / "synthfaces_contact_sheet.png", optimize=True
    )
    expression_sheet(4, 2, args.size, args.seed).save(
        out / "synthfaces_expressions.png", optimize=True
    )
    for name in ("synthfaces_contact_sheet.png", "synthfaces_expressions.png"):
        print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
