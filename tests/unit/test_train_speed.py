"""benchmarks/train_speed.py: the script times our Trainer's step against the reference
(official 2018) step of tests/reference_step.py, built as the release computes, reports the
same losses for both from the same seed, and counts the extra work the reference does.
(The parity of the two steps itself: tests/unit/test_official_step_parity.py.)"""

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
    sys.path.remove(str(BENCHMARKS.parent / "tests"))  # put first by the script (reference_step)


def bench_args(**given) -> argparse.Namespace:
    """The benchmarks' command-line settings: a tiny preset on the CPU with its speed settings
    (fp32, NCHW, eager G, direct convolutions); ``given`` adds or overrides."""
    settings = dict(
        preset="synth-tiny",
        device="cpu",
        speed=None,
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


def _kernels(trainer) -> set[type]:
    return {type(m) for net in (trainer.G, trainer.D) for m in net.modules()}


@pytest.mark.parametrize(
    ("flags", "norms", "convs"),
    [
        ({}, True, True),
        ({"plain_norms": True}, False, True),
        ({"plain_convs": True}, True, False),
        ({"plain_norms": True, "plain_convs": True}, False, False),
        ({"speed": "plain"}, False, False),
    ],
)
def test_each_mode_computes_with_its_kernels(train_speed, tmp_path, flags, norms, convs):
    """The reference computes as the release (torch's own kernels, NCHW, eager, per-tensor
    Adam) whatever our step's settings; ours takes the preset's speed settings, --speed's
    profile instead, and --plain-norms / --plain-convs turn off one half of speed.cpu_kernels."""
    from stargan.accel.kernels import GroupNormInstanceNorm, SmallMapConv2d

    args = bench_args(channels_last=True, g_recompute="norms", **flags)
    ours = train_speed.make_trainer(args, "ours", str(tmp_path / "ours"))
    ref = train_speed.make_trainer(args, "reference", str(tmp_path / "ref"))
    assert (GroupNormInstanceNorm in _kernels(ours)) is norms
    assert (SmallMapConv2d in _kernels(ours)) is convs
    assert ours.cfg.speed.channels_last and ours.cfg.speed.g_recompute == "norms"
    assert not any(k.__module__.startswith("stargan.accel") for k in _kernels(ref))
    assert ref.cfg.speed == train_speed.SPEED_PROFILES["plain"]
    assert ref.opt_d.param_groups[0]["foreach"] is False
    with pytest.raises(ValueError, match="speed.winograd"):
        train_speed.make_trainer(bench_args(winograd=True, bf16=True), "ours", str(tmp_path / "w"))


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
