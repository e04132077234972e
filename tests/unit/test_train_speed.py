"""benchmarks/train_speed.py: the reference (official 2018) step computes the same losses as
our Trainer's step from the same seed, and counts the extra work it does."""

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", BENCHMARKS / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))  # the script puts its folder first for reference_step


def bench_args(**given) -> argparse.Namespace:
    """The benchmarks' command-line settings: a tiny preset on the CPU, fp32, NCHW, eager G,
    direct convolutions, the preset's g_recompute; ``given`` adds or overrides."""
    settings = dict(
        preset="synth-tiny",
        device="cpu",
        g_recompute=None,
        channels_last=False,
        compile_g=False,
        winograd=False,
        bf16=False,
    )
    return argparse.Namespace(**settings | given)


def test_reference_step_matches_our_losses_and_does_more_work(train_speed):
    args = bench_args(
        iters=5,  # one n_critic cycle: four D-only iterations and one with G
        warmup=5,  # and one in lockstep (each step of the reference from our state)
        flops=True,
    )
    result = train_speed.run(args, train_speed.MODES)
    ours, ref = result["modes"]["ours"], result["modes"]["reference"]
    for r in (ours, ref):  # the warm-up's cost beyond as many steady iterations
        assert r["warmup_s"] > 0
        assert r["one_off_s"] == pytest.approx(r["warmup_s"] - 5 * r["s_per_iter"])
    diffs = train_speed.loss_differences(ours["losses"], ref["losses"])
    assert {"D/adv", "D/cls", "D/gp", "G/adv", "G/cls", "G/rec", "G/loss"} <= diffs.keys()
    # The same numbers up to rounding (one D forward on real + fake, or two).
    assert max(d["max_rel"] for d in diffs.values()) < 1e-5
    lockstep = train_speed.loss_differences(ours["lockstep_losses"], ref["lockstep_losses"])
    assert diffs.keys() == lockstep.keys()
    assert max(d["max_rel"] for d in lockstep.values()) < 1e-5


def test_lockstep_copies_the_whole_training_state(train_speed, tmp_path):
    """After copy_state a fresh trainer goes on exactly as the original: the weights, Adam's
    moments and the random generator all travel (a missed one changes what follows)."""
    args = bench_args()
    a = train_speed.make_trainer(args, "ours", str(tmp_path / "a"))
    b = train_speed.make_trainer(args, "ours", str(tmp_path / "b"))
    for _ in range(3):
        a.train_iteration()
        a.step += 1
        b.streams[0].next()  # the benchmark's two trainers read their data in step
    b.step = a.step
    train_speed.copy_state(a, b)
    for _ in range(a.cfg.optim.n_critic):
        assert b.train_iteration() == a.train_iteration()
        a.step += 1
        b.step += 1
    for name, value in a.G.state_dict().items():
        assert torch.equal(value, b.G.state_dict()[name]), name
    for name, value in a.D.state_dict().items():
        assert torch.equal(value, b.D.state_dict()[name]), name


def test_profile_accounts_for_the_step_by_kind_of_work(train_speed):
    spec = importlib.util.spec_from_file_location("profile_step", BENCHMARKS / "profile_step.py")
    profile_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profile_step)
    sys.path.remove(str(BENCHMARKS))
    args = bench_args(top=5, trace=None)
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
    args = bench_args(preset="synth-demo")
    trainer = train_speed.make_trainer(args, "ours", str(tmp_path))
    assert trainer.cfg.optim.d_cls_warmup == 0
    assert "G/loss" in trainer.train_iteration()


def test_joint_preset_runs_both_datasets_with_their_own_labels(train_speed, monkeypatch, tmp_path):
    """A joint preset's iteration is a CelebA-like step and a RaFD-like step (one-hot
    expressions, the mask vector), in both modes; its FLOPs count both steps."""
    from stargan.presets import get_preset

    tiny = get_preset("synth-tiny")
    rafd = dataclasses.replace(tiny.data[0], name="synthfaces-rafd", selected_attrs=())
    joint = dataclasses.replace(tiny, data=(tiny.data[0], rafd))
    monkeypatch.setattr(train_speed, "get_preset", lambda name: joint)
    args = bench_args(iters=5, warmup=5, flops=True)
    result = train_speed.run(args, train_speed.MODES)
    ours, ref = result["modes"]["ours"], result["modes"]["reference"]
    lockstep = train_speed.loss_differences(ours["lockstep_losses"], ref["lockstep_losses"])
    assert {"0:D/cls", "1:D/cls", "0:G/rec", "1:G/rec"} <= lockstep.keys()
    assert max(d["max_rel"] for d in lockstep.values()) < 1e-5

    trainer = train_speed.make_trainer(args, "ours", str(tmp_path))
    assert [s.kind for s in trainer.layout.specs] == ["binary", "categorical"]
    _, label = trainer.streams[1].next()
    assert torch.equal(label.sum(1), torch.ones(len(label)))  # one expression per face
    with train_speed.FlopCount() as one_step:
        trainer.train_step(0, *trainer.streams[0].next(), False)
    per_step = sum(one_step.by_op.values()) / 1e9
    assert ours["gflop_d_only_iter"] == pytest.approx(2 * per_step, rel=0.05)


def test_unknown_dataset_labels_are_refused(train_speed):
    folder = train_speed.DataConfig(name="folder", root="x")
    with pytest.raises(ValueError, match="'folder'.*celeba"):
        train_speed.label_spec(folder)


def test_lockstep_judges_cancelling_terms_against_the_largest_term(train_speed):
    """A sum that cancels (both-128's RaFD G/loss, measured) or a difference of means near zero
    is rounding when tiny against the step's largest term, however large against itself; a real
    difference is not."""
    ours = [{"G/adv": -7.608698, "G/cls": 2.093872, "G/loss": -0.0424394}]
    ref = [{"G/adv": -7.608919, "G/cls": 2.093896, "G/loss": -0.0424924}]
    diffs = train_speed.loss_differences(ours, ref)
    scale = train_speed.largest_loss(ours)
    assert diffs["G/loss"]["max_rel"] > 1e-3
    assert all(train_speed.lockstep_agrees(d, scale) for d in diffs.values())
    real = train_speed.loss_differences([{"D/cls": 3.48}], [{"D/cls": 3.47}])
    assert not train_speed.lockstep_agrees(real["D/cls"], 3.48)
