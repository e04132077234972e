"""Learning-rate schedules as pure functions of the step, so a resumed run cannot drift."""

from __future__ import annotations

from stargan.config import OptimConfig


def lr_at(base_lr: float, step: int, cfg: OptimConfig) -> float:
    """The learning rate for the update that follows ``step`` completed iterations.

    linear (the paper): constant, then falling linearly to exactly 0 at ``num_iters`` over the
    last ``num_iters_decay`` iterations.

    official (the 2018 release, kept for comparison): once every ``lr_update_step``
    iterations inside the decay phase it subtracts the base LR / ``num_iters_decay`` (the
    per-iteration amount; the release keeps the base in ``self.g_lr``), so at its defaults
    1e-4 only falls to 9.99e-5; with ``lr_update_step`` 1 it is the linear schedule.

    Example:
        >>> cfg = OptimConfig(num_iters=100, num_iters_decay=50)
        >>> [lr_at(1.0, s, cfg) for s in (0, 50, 75, 100)]
        [1.0, 1.0, 0.5, 0.0]
    """
    if not 0 <= step <= cfg.num_iters:
        raise ValueError(f"step must be in [0, num_iters={cfg.num_iters}], got {step}")
    decay_start = cfg.num_iters - cfg.num_iters_decay
    if step <= decay_start:
        return base_lr
    if cfg.lr_decay == "linear":
        return base_lr * (cfg.num_iters - step) / cfg.num_iters_decay
    # Official: updates happen after iteration i when (i + 1) % U == 0 and i + 1 > decay_start.
    updates = step // cfg.lr_update_step - decay_start // cfg.lr_update_step
    return base_lr * (1 - updates / cfg.num_iters_decay)
