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
    assert lr_at(1e-4, 200_000, cfg) == pytest.approx(1e-4 * (1 - 1e-5) ** 100)
    assert lr_at(1e-4, 200_000, cfg) > 9.98e-5


def test_step_out_of_range_is_refused():
    with pytest.raises(ValueError, match="num_iters=10"):
        lr_at(1.0, 11, OptimConfig(num_iters=10, num_iters_decay=5))
