"""Checkpoint integrity under faults: mismatched, truncated or corrupt files are refused by
name and resume falls back; a full disk during a save leaves the previous files intact; stale
temporaries of a killed write are removed on resume; pruning never leaves the run without a
valid checkpoint; non-finite values are never saved; a NaN stop ends the command with a
message naming the term and the step.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from conftest import CELEBA_SPEC, TensorFaces, tiny_config
from stargan import atomic
from stargan import checkpoint as ckpt
from stargan.cli import EXIT_USER_ERROR, main
from stargan.training.trainer import NonFiniteError, Trainer
from train_procs import tiny_config as run_config
from train_procs import write_tiny_celeba


@pytest.fixture
def data():
    return TensorFaces(CELEBA_SPEC)


def _trained(out, data, iters=6, **run):
    trainer = Trainer(tiny_config(out, iters=iters, **run), datasets=[data])
    trainer.fit()
    return trainer


def _names(trainer):
    return [p.name for p in trainer.checkpoints()]


def test_other_architecture_is_refused_naming_file_and_both_models(tmp_path, data):
    _trained(tmp_path, data)
    cfg = tiny_config(tmp_path)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, g_conv_dim=16))
    with pytest.raises(ckpt.CheckpointError) as info:
        Trainer(cfg, datasets=[data], resume="auto")
    message = str(info.value)
    assert "state-00000006.safetensors was trained with model" in message
    assert "g_conv_dim=8" in message and "g_conv_dim=16" in message


@pytest.mark.parametrize("damage", ["truncated", "empty", "zeroed-tail", "other-format"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(tmp_path, data, damage):
    _trained(tmp_path, data)
    newest = tmp_path / "checkpoints" / "state-00000006.safetensors"
    raw = newest.read_bytes()
    if damage == "other-format":  # a valid file of another kind: the model file
        raw = (tmp_path / "model.safetensors").read_bytes()
    newest.write_bytes(
        {
            "truncated": raw[: len(raw) // 3],
            "empty": b"",
            "zeroed-tail": raw[:-64] + bytes(64),
            "other-format": raw,
        }[damage]
    )
    resumed = Trainer(tiny_config(tmp_path), datasets=[data], resume="auto")
    assert resumed.step == 3
    (skipped,) = resumed.skipped_checkpoints
    assert str(newest) in skipped


def test_disk_full_during_a_save_keeps_the_previous_files(tmp_path, data, monkeypatch):
    trainer = _trained(tmp_path, data, iters=3)
    before = {p.name: p.read_bytes() for p in (tmp_path, tmp_path / "checkpoints") for p in
              p.iterdir() if p.is_file()}  # fmt: skip
    real_fdopen = os.fdopen

    class FullDisk:
        """A file that takes 4 KiB, then fails as a full disk does."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:4096])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    trainer.train_iteration()
    trainer.step += 1
    with pytest.raises(OSError, match="No space left"):
        trainer.save_state()
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in (tmp_path, tmp_path / "checkpoints") for p in
             p.iterdir() if p.is_file()}  # fmt: skip
    assert after == before  # nothing new, nothing pruned, no temporary left
    resumed = Trainer(tiny_config(tmp_path, iters=3), datasets=[data], resume="auto")
    assert resumed.step == 3
    ckpt.load_tensors(tmp_path / "model.safetensors", ckpt.MODEL_FORMAT)


def test_resume_removes_temporaries_left_by_a_killed_write(tmp_path, data):
    _trained(tmp_path, data)
    stale = [
        tmp_path / "checkpoints" / ".state-00000007.safetensors.k2j3_x.tmp",
        tmp_path / ".model.safetensors.a8f_2q.tmp",
        tmp_path / ".metrics.jsonl.zz91.tmp",
        tmp_path / "samples" / ".step-00000007.png.u7w.tmp",
    ]
    unrelated = tmp_path / ".notes.txt.4u2x.tmp"  # not a file of ours: left alone
    for p in [*stale, unrelated]:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half a file")
    resumed = Trainer(tiny_config(tmp_path), datasets=[data], resume="auto")
    assert sorted(resumed.removed_temporaries) == sorted(stale)
    assert not any(p.exists() for p in stale) and unrelated.exists()
    assert resumed.step == 6


def test_a_run_killed_before_its_first_checkpoint_resumes_from_scratch(tmp_path, data):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "D/lo')
    fresh = Trainer(tiny_config(tmp_path), datasets=[data], resume="auto")
    assert fresh.step == 0 and not (tmp_path / "metrics.jsonl").exists()


def test_pruning_keeps_the_new_checkpoint_when_a_newer_named_one_is_invalid(tmp_path, data):
    # keep_checkpoints=1: the strictest setting. The newest file is corrupt, resume falls back
    # to an older one; the next save must not be pruned in favour of the corrupt file.
    trainer = _trained(tmp_path, data, iters=6, keep_checkpoints=2)
    assert _names(trainer) == ["state-00000006.safetensors", "state-00000003.safetensors"]
    newest = tmp_path / "checkpoints" / "state-00000006.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    cfg = tiny_config(tmp_path, iters=6, keep_checkpoints=1)
    resumed = Trainer(cfg, datasets=[data], resume="auto")
    assert resumed.step == 3
    resumed.train_iteration()
    resumed.step += 1
    saved = resumed.save_state()
    assert saved.name == "state-00000004.safetensors" and saved.exists()
    assert Trainer(cfg, datasets=[data], resume="auto").step == 4  # a valid one survived


def test_non_finite_weights_are_never_saved(tmp_path, data):
    trainer = _trained(tmp_path, data, iters=3)
    before = {p: p.read_bytes() for p in [*trainer.checkpoints(), tmp_path / "model.safetensors"]}
    with torch.no_grad():
        next(trainer.G.parameters())[0, 0, 0, 0] = float("inf")
    trainer.step += 1
    with pytest.raises(NonFiniteError, match=r"step 4 \(G\.main\.0\.weight\)"):
        trainer.save_state()
    assert {p: p.read_bytes() for p in before} == before
    assert _names(trainer) == ["state-00000003.safetensors"]


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    return write_tiny_celeba(tmp_path_factory.mktemp("celeba"), n=10)


def _exploding(tmp_path, celeba, **run):
    d = run_config(celeba, iters=5, save_every=1)
    d["optim"]["d_lr"] = 1e38  # the first update makes D's weights ~1e38; its next loss is NaN
    d["run"].update(num_threads=0, **run)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(d))
    return ["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet"]


def _all_saved_tensors_finite(out):
    for path in [*(out / "checkpoints").glob("*.safetensors"), out / "model.safetensors"]:
        tensors, _ = ckpt.load_tensors(path, ckpt.STATE_FORMAT if "state" in path.name else
                                       ckpt.MODEL_FORMAT)  # fmt: skip
        assert all(t.isfinite().all() for t in tensors.values() if t.is_floating_point()), path


def test_a_nan_stops_the_command_naming_term_and_step(tmp_path, celeba, capsys):
    assert main(_exploding(tmp_path, celeba)) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "loss term D/adv is nan" in err and "at step 1" in err and "--on-nonfinite" in err
    out = tmp_path / "run"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["state-00000001.safetensors"]
    _all_saved_tensors_finite(out)


def test_the_skip_policy_finishes_and_saves_only_finite_values(tmp_path, celeba):
    assert main(_exploding(tmp_path, celeba, on_nonfinite="skip")) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert all(r.get("D/skipped") == 1.0 for r in records[1:])
    _all_saved_tensors_finite(tmp_path / "run")
