"""What the evaluation modules and `stargan evaluate` share, without importing torch: the
command checks its inputs and reports what is wrong before it loads torch (over a second)."""

JUDGE_FORMAT = "stargan-judge/1"
"""The format of judge files (:func:`stargan.evaluation.save_judge`)."""


class EvaluationError(ValueError):
    """Evaluation inputs that do not fit together (sizes, label spaces, missing files)."""
