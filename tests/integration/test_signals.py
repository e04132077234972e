"""Graceful stop: SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice) makes the run checkpoint
after the iteration in progress and exit with EXIT_STOPPED (75); the same command with
--resume finishes with the weights of an uninterrupted run, bit for bit. Without --resume or
--overwrite, a run into the stopped run's folder is refused.
"""

from __future__ import annotations

import signal
import subprocess

import pytest
import torch

from stargan import checkpoint as ckpt
from stargan.cli import EXIT_STOPPED, EXIT_USER_ERROR, main
from train_procs import (
    assert_bitwise_equal,
    checkpoint_step,
    child_env,
    final_files,
    last_logged_step,
    metrics_without_time,
    run_to_end,
    state_files,
    tiny_config,
    train_argv,
    wait_for_step,
    write_config,
    write_tiny_celeba,
)

ITERS = 60


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(config file, run folder) of the run trained without a stop."""
    root = tmp_path_factory.mktemp("signals")
    data = write_tiny_celeba(root / "data")
    # No periodic checkpoints: the only one before the end must be the stop's own.
    config = write_config(root / "config.json", tiny_config(data, ITERS, save_every=10_000))
    done = run_to_end(train_argv(config, root / "reference"))
    assert done.returncode == 0, done.stderr
    return config, root / "reference"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_checkpoints_within_one_step_and_the_same_command_resumes(
    tmp_path, uninterrupted, sig, capsys
):
    config, reference = uninterrupted
    out = tmp_path / "run"
    proc = subprocess.Popen(
        train_argv(config, out), env=child_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert wait_for_step(proc, out, beyond=3)
        logged = last_logged_step(out)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_STOPPED, err

    # One checkpoint, at the last finished step: nothing trained is lost, and at most the
    # iteration under way when the signal came (plus one for the race between reading the
    # log and signalling) ran after it.
    (state,) = state_files(out)
    stop = checkpoint_step(state)
    with capsys.disabled():  # the figure in docs/reliability.md
        print(f"{sig.name}: log at step {logged} when signalled, stopped at step {stop}")
    assert logged <= stop <= logged + 2
    assert stop == last_logged_step(out) < ITERS
    assert f"stopped at step {stop}" in err and "--resume" in err
    ckpt.load_tensors(state, ckpt.STATE_FORMAT)  # valid, checksum verified
    _, meta = ckpt.load_tensors(out / "model.safetensors", ckpt.MODEL_FORMAT)
    assert meta["step"] == str(stop)

    # A new run into the stopped run's folder is refused (in-process: no second torch import).
    threads = torch.get_num_threads()
    try:
        assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == (
            EXIT_USER_ERROR
        )
    finally:
        torch.set_num_threads(threads)
    message = capsys.readouterr().err
    assert str(out) in message and "--resume" in message and "--overwrite" in message
    assert [checkpoint_step(p) for p in state_files(out)] == [stop]  # untouched

    # The same command with --resume finishes, identical to the uninterrupted run.
    done = run_to_end(train_argv(config, out, "--resume"))
    assert done.returncode == 0, done.stderr
    assert f"resuming from {state}" in done.stderr
    assert_bitwise_equal(final_files(reference), final_files(out))
    assert metrics_without_time(out) == metrics_without_time(reference)
