"""Our Trainer.train_step computes the official 2018 step (tests/reference_step.py, the
release's solver.py on our models): run in lockstep from the same state (weights, Adam's
moments, random generator, batch), both steps give the same losses to float rounding and move
the weights alike, for one dataset and for joint training, in D-only steps and steps with a G
update.

Ours runs with the default speed settings (the exact CPU kernels), the reference as the
release computes (``SPEED_PROFILES["plain"]``: torch's own kernels, per-tensor Adam), so the
comparison covers our kernels as well as our step's structure (docs/performance.md, 'What every
step does differently from the 2018 release')."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_config
from reference_step import as_reference, copy_state
from stargan.accel.kernels import GroupNormInstanceNorm
from stargan.training.trainer import Trainer

RTOL = 1e-5
"""Largest relative difference of a loss term between the two steps: rounding alone (the
group-norm kernel and the GEMM convs against torch's own, one D forward on real + fake against
two, fused Adam against the per-tensor loop)."""


def _pair(tmp_path, datasets) -> tuple[Trainer, Trainer]:
    """Our trainer and the release's, on the same seed and data."""
    n = len(datasets)
    ours = Trainer(tiny_config(tmp_path / "ours", n_data=n), datasets=datasets)
    ref = Trainer(tiny_config(tmp_path / "ref", n_data=n, cpu_kernels=False), datasets=datasets)
    return ours, as_reference(ref)


def _train(trainer: Trainer, iterations: int) -> None:
    for _ in range(iterations):
        trainer.train_iteration()
        trainer.step += 1


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        **{f"G.{k}": v.clone() for k, v in trainer.G.state_dict().items()},
        **{f"D.{k}": v.clone() for k, v in trainer.D.state_dict().items()},
    }


def _assert_same_losses(ours: dict[str, float], ref: dict[str, float]) -> None:
    assert ours.keys() == ref.keys()
    for name in ours:
        scale = max(abs(ours[name]), abs(ref[name]))
        assert abs(ours[name] - ref[name]) <= RTOL * scale, (name, ours[name], ref[name])


@pytest.mark.parametrize("update_g", [False, True], ids=["D-only", "D-and-G"])
@pytest.mark.parametrize("joint", [False, True], ids=["single", "joint"])
def test_our_step_is_the_official_step(tmp_path, celeba_like, rafd_like, joint, update_g):
    datasets = [celeba_like, rafd_like] if joint else [celeba_like]
    ours, ref = _pair(tmp_path, datasets)
    # From a trained state (Adam's moments set, G and D moved): two iterations of ours, one
    # with a G update (n_critic 2), which the reference then takes whole.
    _train(ours, 2)
    for mine, theirs in zip(ours.streams, ref.streams, strict=True):
        theirs.seek(mine.epoch, mine.batch)
    for k, (stream, data) in enumerate(zip(ours.streams, ours.cfg.data, strict=True)):
        copy_state(ours, ref)
        before = _weights(ours)
        x, label = stream.next()
        got = ours.train_step(k, x, label, update_g, flip=data.flip)
        ours_moved = {n: v - before[n] for n, v in _weights(ours).items()}
        want = ref.train_step(k, x, label, update_g, flip=data.flip)
        ref_moved = {n: v - before[n] for n, v in _weights(ref).items()}

        assert {"D/adv", "D/cls", "D/gp", "D/loss"} <= got.keys()
        assert ("G/loss" in got) is update_g
        _assert_same_losses(got, want)
        # The same updates, G's only with a G step: each parameter's, as a whole, to 1e-3.
        for name, step in ours_moved.items():
            assert bool(step.any()) is (update_g or name.startswith("D.")), name
            theirs = ref_moved[name]
            if name == "G.main.0.weight":
                # The centre taps over the label channels see a constant that the instance norm
                # removes again: their gradient is 0 but for rounding noise, which Adam turns
                # into steps of the learning rate either way (test_distributed.py).
                step, theirs = step.clone(), theirs.clone()
                step[:, 3:, 3, 3] = theirs[:, 3:, 3, 3] = 0
            diff = (step - theirs).norm()
            assert diff <= 1e-3 * step.norm(), (name, diff.item(), step.norm().item())


def test_lockstep_copies_the_whole_training_state(tmp_path, celeba_like):
    """After copy_state a fresh trainer goes on exactly as the original: the weights, Adam's
    moments and the random generator all travel (a missed one changes what follows)."""
    a = Trainer(tiny_config(tmp_path / "a"), datasets=[celeba_like])
    b = Trainer(tiny_config(tmp_path / "b"), datasets=[celeba_like])
    for _ in range(3):
        a.train_iteration()
        a.step += 1
        b.streams[0].next()  # the two trainers read their data in step
    b.step = a.step
    copy_state(a, b)
    for _ in range(a.cfg.optim.n_critic):
        assert b.train_iteration() == a.train_iteration()
        a.step += 1
        b.step += 1
    for name, value in _weights(a).items():
        assert torch.equal(value, _weights(b)[name]), name


def test_the_reference_computes_as_the_release(tmp_path, celeba_like):
    """The reference trainer's G and D are the paper's layers with torch's kernels, its Adam
    the per-tensor loop; one built with other speed settings is refused."""
    ours, ref = _pair(tmp_path, [celeba_like])
    theirs = {type(m) for net in (ref.G, ref.D) for m in net.modules()}
    assert {nn.Conv2d, nn.InstanceNorm2d} <= theirs
    assert not any(kind.__module__.startswith("stargan.accel") for kind in theirs)
    assert GroupNormInstanceNorm in {type(m) for m in ours.G.modules()}  # ours: cpu_kernels
    for opt in (ref.opt_g, ref.opt_d):
        assert opt.param_groups[0]["foreach"] is False and not opt.param_groups[0]["fused"]
    with pytest.raises(ValueError, match="torch's own kernels"):
        as_reference(Trainer(tiny_config(tmp_path / "fast"), datasets=[celeba_like]))
