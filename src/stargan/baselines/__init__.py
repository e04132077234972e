"""The paper's baselines (Table 3), trained and evaluated like StarGAN on the same data.

- ``cyclegan``: two generators and two discriminators per pair neutral <-> expression
  (:mod:`stargan.baselines.cyclegan`);
- ``diat``: one generator and discriminator per direction neutral -> expression, with an
  identity feature term (:mod:`stargan.baselines.diat`, :mod:`stargan.baselines.identity`);
- ``icgan``: a conditional GAN with encoders to z and to the label
  (:mod:`stargan.baselines.icgan`).

Every baseline has ``translate(x, source_label, target_name)``, ``num_parameters()`` ->
(per model, models) and is saved by :func:`save_baseline` / read by :func:`load_baseline`.
:class:`BaselineTrainer` trains any of them stage by stage, checkpointing a run folder so
that a killed run resumes exactly. docs/baselines.md maps each method to the paper.

Example:
    >>> from stargan.baselines import BaselineConfig, train, save_baseline
    >>> model = train(BaselineConfig.synth("cyclegan", 32, iters=3000))   # doctest: +SKIP
    >>> y = model.translate(x, "neutral", "happy")                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use, so that the ``stargan`` command (which registers
# ``stargan baselines`` from :mod:`stargan.baselines.cli`) does not load torch for every other
# subcommand. The first use imports every module below: the methods register themselves.
_EXPORTS = {
    "common": (
        "METHODS", "Baseline", "BaselineConfig", "BaselineError", "ExpressionData", "Stage",
        "build_baseline", "register_baseline",
    ),
    "cyclegan": ("CycleGAN",),
    "diat": ("DIAT",),
    "icgan": ("IcGAN",),
    "identity": ("IdentityFeatures", "train_identity_classifier"),
    "paper": ("PAPER_TABLE3", "RAFD_EXPRESSIONS", "format_parameters", "paper_scale_parameters"),
    "training": (
        "BASELINE_FORMAT", "STATE_FORMAT", "BaselineTrainer", "load_baseline", "save_baseline",
        "train",
    ),
}  # fmt: skip
_MODULE_OF = {
    name: f"stargan.baselines.{module}" for module, names in _EXPORTS.items() for name in names
}
_MODULE_OF["RunFolderError"] = "stargan.training.runfolder"  # what a baseline run raises too

__all__ = [
    "BASELINE_FORMAT",
    "DIAT",
    "METHODS",
    "PAPER_TABLE3",
    "RAFD_EXPRESSIONS",
    "STATE_FORMAT",
    "Baseline",
    "BaselineConfig",
    "BaselineError",
    "BaselineTrainer",
    "CycleGAN",
    "ExpressionData",
    "IcGAN",
    "IdentityFeatures",
    "RunFolderError",
    "Stage",
    "build_baseline",
    "format_parameters",
    "load_baseline",
    "paper_scale_parameters",
    "register_baseline",
    "save_baseline",
    "train",
    "train_identity_classifier",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'stargan.baselines' has no attribute {name!r}")
    for module in _EXPORTS:
        importlib.import_module(f"stargan.baselines.{module}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
