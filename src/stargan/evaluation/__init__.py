"""Evaluation: a judge classifier, translation metrics and the HTML report (docs/evaluation.md).

Names are imported on first use, so that the ``stargan`` command (which registers
``stargan evaluate`` from :mod:`stargan.evaluation.cli`) does not load torchmetrics and
matplotlib for every other subcommand.

Example:
    >>> from stargan.evaluation import evaluate_model, load_judge, write_report
    >>> judge = load_judge("runs/synth-demo/judge.safetensors")           # doctest: +SKIP
    >>> results = evaluate_model(stargan.load("runs/synth-demo/model.safetensors"),
    ...                          test_set, judge)                          # doctest: +SKIP
    >>> write_report("runs/synth-demo", results)                           # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "common": ("JUDGE_FORMAT", "EvaluationError"),
    "classifier": (
        "ErrorCounts", "Judge", "JudgeConfig",
        "JudgeTrainConfig", "decisions", "holdout_split", "judge_error", "load_judge",
        "save_judge", "shipped_judge", "train_classifier",
    ),
    "metrics": (
        "PIXEL_TOLERANCE", "PeriodicEvaluation", "PixelStats", "eval_targets",
        "evaluate_generator", "evaluate_model", "ground_truth_fn", "judge_fid", "judge_kid",
        "psnr_from_mse", "quick_eval", "target_hits", "unchanged_mask",
    ),
    "report": ("Grid", "plot_metrics", "translation_grid", "write_report"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "JUDGE_FORMAT",
    "PIXEL_TOLERANCE",
    "ErrorCounts",
    "EvaluationError",
    "Grid",
    "Judge",
    "JudgeConfig",
    "JudgeTrainConfig",
    "PeriodicEvaluation",
    "PixelStats",
    "decisions",
    "eval_targets",
    "evaluate_generator",
    "evaluate_model",
    "ground_truth_fn",
    "holdout_split",
    "judge_error",
    "judge_fid",
    "judge_kid",
    "load_judge",
    "plot_metrics",
    "psnr_from_mse",
    "quick_eval",
    "save_judge",
    "shipped_judge",
    "target_hits",
    "train_classifier",
    "translation_grid",
    "unchanged_mask",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'stargan.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"stargan.evaluation.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from stargan.evaluation.classifier import (
        ErrorCounts,
        Judge,
        JudgeConfig,
        JudgeTrainConfig,
        decisions,
        holdout_split,
        judge_error,
        load_judge,
        save_judge,
        shipped_judge,
        train_classifier,
    )
    from stargan.evaluation.common import JUDGE_FORMAT, EvaluationError
    from stargan.evaluation.metrics import (
        PIXEL_TOLERANCE,
        PeriodicEvaluation,
        PixelStats,
        eval_targets,
        evaluate_generator,
        evaluate_model,
        ground_truth_fn,
        judge_fid,
        judge_kid,
        psnr_from_mse,
        quick_eval,
        target_hits,
        unchanged_mask,
    )
    from stargan.evaluation.report import Grid, plot_metrics, translation_grid, write_report
