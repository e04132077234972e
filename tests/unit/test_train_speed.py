"""benchmarks/train_speed.py: the reference (official 2018) step computes the same losses as
our Trainer's step from the same seed, and counts the extra work it does."""

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", BENCHMARKS / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))  # the script puts its folder first for reference_step


def test_reference_step_matches_our_losses_and_does_more_work(train_speed):
    args = argparse.Namespace(
        preset="synth-tiny",
        iters=5,  # one n_critic cycle: four D-only iterations and one with G
        warmup=2,
        device="cpu",
        bf16=False,
        channels_last=False,
        flops=True,
        g_recompute=None,  # the preset's
    )
    result = train_speed.run(args, train_speed.MODES)
    ours, ref = result["modes"]["ours"], result["modes"]["reference"]
    diffs = train_speed.loss_differences(ours["losses"], ref["losses"])
    assert {"D/adv", "D/cls", "D/gp", "G/adv", "G/cls", "G/rec", "G/loss"} <= diffs.keys()
    # The same numbers up to rounding (one D forward on real + fake, or two).
    assert max(d["max_rel"] for d in diffs.values()) < 1e-5
    # About the same D-only work (ours also back-propagates through the class head on the
    # fakes, zeros); with G the reference translates again and computes D's gradients.
    assert ref["gflop_d_only_iter"] == pytest.approx(ours["gflop_d_only_iter"], rel=1e-3)
    assert ref["gflop_d_and_g_iter"] > 1.1 * ours["gflop_d_and_g_iter"]


def test_profile_accounts_for_the_step_by_kind_of_work(train_speed):
    spec = importlib.util.spec_from_file_location("profile_step", BENCHMARKS / "profile_step.py")
    profile_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profile_step)
    sys.path.remove(str(BENCHMARKS))
    args = argparse.Namespace(
        preset="synth-tiny", device="cpu", channels_last=False, g_recompute=None, top=5, trace=None
    )
    result = profile_step.profile_steps(args)
    kinds = result["kinds"]
    assert sum(k["share_of_time"] for k in kinds.values()) == pytest.approx(1.0)
    # Every FLOP counted lands in a kind that spends time, and convolutions carry most.
    flops = {name: k["gflop_per_iter"] for name, k in kinds.items()}
    assert all(kinds[name]["s_per_iter"] > 0 for name, f in flops.items() if f)
    assert flops["convolution forward"] > 0 and flops["convolution backward"] > 0
    assert kinds["Adam"]["s_per_iter"] > 0 and kinds["instance norm"]["s_per_iter"] > 0
    assert len(result["top_ops_s_per_cycle"]) == 5
    assert profile_step.kind_of("aten::convolution_backward") == "convolution backward"
    assert profile_step.kind_of("aten::mm") == "matrix products (D's tiny-map convs)"


def test_the_timed_step_is_the_gan_step_even_in_presets_with_a_warmup(train_speed, tmp_path):
    """synth-demo warms D's classifier up alone for 200 iterations: the benchmark must time
    the GAN step, not that (it once reported 0.05 s/iter, the warm-up's cost)."""
    args = argparse.Namespace(
        preset="synth-demo", device="cpu", g_recompute=None, channels_last=False
    )
    trainer = train_speed.make_trainer(args, "ours", str(tmp_path))
    assert trainer.cfg.optim.d_cls_warmup == 0
    assert "G/loss" in trainer.train_iteration()
