import pytest

from stargan.config import OptimConfig
from stargan.training.schedule import lr_at


def test_linear_decay_key_steps():
    cfg = OptimConfig(num_iters=200_000, num_iters_decay=100_000)
    assert lr_at(1e-4, 0, cfg) == 1e-4  # start
    assert lr_at(1e-4, 100_000, cfg) == 1e-4  # decay starts
    assert lr_at(1e-4, 150_000, cfg) == pytest.approx(5e-5)  # midpoint of the decay
    assert lr_at(1e-4, 199_999, cfg) == pytest.approx(1e-9)
    assert lr_at(1e-4, 200_000, cfg) == 0.0  # end: exactly zero


def test_official_decay_barely_moves():
    cfg = OptimConfig(num_iters=200_000, num_iters_decay=100_000, lr_decay="official")
    assert lr_at(1e-4, 100_999, cfg) == 1e-4
    assert lr_at(1e-4, 101_000, cfg) == pytest.approx(1e-4 * (1 - 1e-5))
    # The release's "decay" ends at ~9.99e-5, not 0 (REFERENCE.md, official quirks).
    assert lr_at(1e-4, 200_000, cfg) == pytest.approx(1e-4 * (1 - 100 / 100_000))
    assert lr_at(1e-4, 200_000, cfg) > 9.98e-5


def test_official_decay_subtracts_the_base_amount():
    """The release subtracts base / num_iters_decay each time (self.g_lr never changes), an
    arithmetic decay: updated every iteration it is the paper's linear decay, ending at 0
    (a geometric (1 - 1/D)**k would end at 1/e of the base)."""
    official = OptimConfig(num_iters=1500, num_iters_decay=750, lr_decay="official",
                           lr_update_step=1)  # fmt: skip
    linear = OptimConfig(num_iters=1500, num_iters_decay=750)
    for step in (0, 750, 751, 1000, 1499, 1500):
        assert lr_at(1e-4, step, official) == pytest.approx(lr_at(1e-4, step, linear), abs=1e-15)
    # At lr_update_step 1000 in this run: one subtraction, at iteration 1000.
    cfg = OptimConfig(num_iters=1500, num_iters_decay=750, lr_decay="official")
    assert lr_at(1e-4, 999, cfg) == 1e-4
    assert lr_at(1e-4, 1500, cfg) == pytest.approx(1e-4 - 1e-4 / 750)


def test_step_out_of_range_is_refused():
    with pytest.raises(ValueError, match="num_iters=10"):
        lr_at(1.0, 11, OptimConfig(num_iters=10, num_iters_decay=5))
