"""The paper's Table 3 and our parameter counts at its scale.

Example:
    >>> format_parameters(paper_scale_parameters()["icgan"])
    '67.8M x 1'
"""

from __future__ import annotations

from typing import Any

import torch

from stargan.baselines.common import METHODS, BaselineConfig, build_baseline
from stargan.config import ModelConfig
from stargan.data.labels import LabelSpec
from stargan.data.synthfaces import EXPRESSIONS

PAPER_TABLE3: dict[str, dict[str, Any]] = {
    "real": {"error": 0.45},
    "stargan": {"error": 2.12, "params_m": 53.2, "models": 1},
    "diat": {"error": 4.10, "params_m": 52.6, "models": 7},
    "cyclegan": {"error": 5.99, "params_m": 52.6, "models": 14},
    "icgan": {"error": 8.07, "params_m": 67.8, "models": 1},
}
"""The paper's Table 3 (REFERENCE.md, 'Results to compare against'): classification error
(%) on RaFD expression synthesis and parameters as "N (millions) x models" at 128 px."""

RAFD_EXPRESSIONS = LabelSpec(EXPRESSIONS, "categorical")
"""RaFD's 8 expressions in class order (SynthFaces' RaFD style uses the same)."""


def paper_scale_parameters() -> dict[str, tuple[int, int]]:
    """(parameters per model, models) of StarGAN and every baseline at the paper's scale
    (128 px, widths 64, RaFD's 8 expressions), built on the meta device (no memory).

    Example:
        >>> paper_scale_parameters()["stargan"]
        (53226560, 1)
    """
    from stargan.models import build_discriminator, build_generator, count_parameters

    out: dict[str, tuple[int, int]] = {}
    n = RAFD_EXPRESSIONS.n_labels
    with torch.device("meta"):
        cfg = ModelConfig(image_size=128, c_dim=n, n_classes=n)
        out["stargan"] = (
            count_parameters(build_generator(cfg)) + count_parameters(build_discriminator(cfg)),
            1,
        )
        for method in sorted(METHODS):
            out[method] = build_baseline(
                BaselineConfig.paper(method), RAFD_EXPRESSIONS
            ).num_parameters()
    return out


def format_parameters(count: tuple[int, int]) -> str:
    """(53226560, 1) -> '53.2M x 1', the paper's notation."""
    return f"{count[0] / 1e6:.1f}M x {count[1]}"
