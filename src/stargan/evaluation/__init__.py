"""Evaluation: a judge classifier, translation metrics and the HTML report (docs/evaluation.md).

Example:
    >>> from stargan.evaluation import evaluate_model, load_judge, write_report
    >>> judge = load_judge("runs/synth-demo/judge.safetensors")           # doctest: +SKIP
    >>> results = evaluate_model(stargan.load("runs/synth-demo/model.safetensors"),
    ...                          test_set, judge)                          # doctest: +SKIP
    >>> write_report("runs/synth-demo", results)                           # doctest: +SKIP
"""

from stargan.evaluation.classifier import (
    JUDGE_FORMAT,
    ErrorCounts,
    EvaluationError,
    Judge,
    JudgeConfig,
    JudgeTrainConfig,
    decisions,
    holdout_split,
    judge_error,
    load_judge,
    save_judge,
    train_classifier,
)
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
    "target_hits",
    "train_classifier",
    "translation_grid",
    "unchanged_mask",
    "write_report",
]
