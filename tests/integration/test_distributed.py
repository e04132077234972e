"""Data-parallel training under torchrun: 2 CPU processes (gloo, loopback only).

* A 2-rank run with global batch B ends with the weights of a 1-process run with batch B
  (float tolerance: DDP's gradient all-reduce sums in another order); the ranks themselves are
  checked equal by the trainer at every save (it raises if their weights differ).
* With different data on every rank, DDP gives both ranks bit-identical gradients at every
  optimizer step (WGAN-GP double backward, several G forwards per backward, joint datasets);
  a run without the DDP wrappers shows that a missing synchronisation would be seen.
* A checkpoint written by the 2-rank run resumes on 1 rank and lands on the same weights.
* With speed.compile_g (G compiled on every rank) the 2-rank run lands there too.
* A worker SIGKILLed under ``--max-restarts=1`` brings the job back from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stargan import checkpoint as ckpt
from stargan.config import ModelConfig
from stargan.models import build_generator
from stargan.training import distributed
from stargan.training.trainer import EpochBatches
from train_procs import (
    checkpoint_step,
    child_env,
    run_to_end,
    state_files,
    tiny_config,
    train_argv,
    write_config,
    write_tiny_celeba,
)

# Two-process torchrun runs: the slow tier (CI runs it; `bash scripts/test.sh --fast` does not).
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_argv(config: Path, out: Path, *extra: str, nproc: int = 2) -> list[str]:
    # c10d rendezvous on loopback (127.0.0.1 only), torchrun's setup for elastic restarts.
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
                "--nnodes=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
                *extra]  # fmt: skip
    return launcher + train_argv(config, out)[1:]  # "-m stargan train ..." under torchrun


def _weights(out: Path) -> dict[str, torch.Tensor]:
    state, _ = ckpt.load_tensors(state_files(out)[0], ckpt.STATE_FORMAT)
    return {k: v for k, v in state.items() if k.startswith(("G.", "D."))}


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal within float tolerance, except the weights G's output does not depend on.

    The centre tap of G's first 7x7 conv over a label channel multiplies a channel that is
    constant over every pixel it sees; the instance norm after the conv subtracts it again,
    so its gradient is exactly 0 in exact arithmetic and rounding noise (~1e-9) in floats.
    Adam divides by sqrt(v) + 1e-8 and turns that noise into +-lr steps whose sign depends on
    the summation order. Those entries change nothing G computes, which is checked below.
    """
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k].clone(), b[k].clone()
        if k == "G.main.0.weight":
            x[:, 3:, 3, 3] = y[:, 3:, 3, 3] = 0
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4, msg=k)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = (torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    outputs = []
    for weights in (a, b):
        g = build_generator(ModelConfig(**CONFIG["model"], c_dim=5))
        g.load_state_dict({k[2:]: v for k, v in weights.items() if k.startswith("G.")})
        with torch.no_grad():
            outputs.append(g(images, labels))
    torch.testing.assert_close(*outputs, atol=1e-5, rtol=1e-4)


CONFIG = tiny_config(Path("unused"), iters=4, save_every=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_celeba(tmp_path_factory.mktemp("celeba"))


def test_two_ranks_equal_one_process_and_resume_on_one(tmp_path, data):
    config = write_config(tmp_path / "c.json", tiny_config(data, iters=4, save_every=2))
    single = run_to_end(train_argv(config, tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    ddp = run_to_end(_torchrun_argv(config, tmp_path / "ddp"))
    assert ddp.returncode == 0, ddp.stderr

    # Same weights; rank 1 wrote nothing of its own (same files as the single run).
    _assert_close(_weights(tmp_path / "single"), _weights(tmp_path / "ddp"))
    assert [p.name for p in state_files(tmp_path / "ddp")] == [
        "state-00000004.safetensors",
        "state-00000002.safetensors",
    ]
    files = {p.relative_to(tmp_path / "single") for p in (tmp_path / "single").rglob("*")}
    assert files == {p.relative_to(tmp_path / "ddp") for p in (tmp_path / "ddp").rglob("*")}
    # Rank 0 logs the loss averaged over the ranks: the global batch's loss.
    logs = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("single", "ddp")
    ]
    for a, b in zip(*logs, strict=True):
        assert a["step"] == b["step"]
        assert a["D/loss"] == pytest.approx(b["D/loss"], rel=1e-4, abs=1e-5)

    # The 2-rank checkpoint at step 2 resumes on 1 rank (the data position is global).
    shutil.copytree(tmp_path / "ddp", tmp_path / "moved")
    (tmp_path / "moved" / "checkpoints" / "state-00000004.safetensors").unlink()
    resumed = run_to_end(train_argv(config, tmp_path / "moved", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    _assert_close(_weights(tmp_path / "single"), _weights(tmp_path / "moved"))


def test_compiled_g_under_torchrun_ends_where_one_eager_process_does(tmp_path, data):
    """speed.compile_g under torchrun: every rank compiles its G (inside its DDP wrapper), and
    the 2-rank run lands on the weights of a 1-process eager run with the global batch."""
    config = write_config(tmp_path / "c.json", tiny_config(data, iters=4, save_every=2))
    single = run_to_end(train_argv(config, tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    ddp = run_to_end([*_torchrun_argv(config, tmp_path / "ddp"), "--compile-g"])
    assert ddp.returncode == 0, ddp.stderr
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["speed"]["compile_g"]
    _assert_close(_weights(tmp_path / "single"), _weights(tmp_path / "ddp"))


def _probe(out: Path, mode: str) -> list[dict[str, list[dict[str, torch.Tensor]]]]:
    """Run ddp_probe.py on 2 ranks; each rank's gradients per optimizer step and weights per
    iteration."""
    probe = Path(__file__).with_name("ddp_probe.py")
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
            "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}", str(probe),
            str(out), mode]  # fmt: skip
    out.mkdir()
    result = run_to_end(argv)
    assert result.returncode == 0, result.stderr
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def test_ranks_get_identical_gradients_from_different_data(tmp_path):
    rank0, rank1 = _probe(tmp_path / "ddp", "ddp")
    # 4 iterations x 2 datasets x (D step, G step); the probe fails if a parameter of G or D
    # has no gradient at a step (an unused parameter).
    assert len(rank0["grads"]) == len(rank1["grads"]) == 16
    for step, (a, b) in enumerate(zip(rank0["grads"], rank1["grads"], strict=True)):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"optimizer step {step}: {k} differs between ranks"
    for a, b in zip(rank0["weights"], rank1["weights"], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        rank0["weights"][0]["D.src.weight"], rank0["weights"][-1]["D.src.weight"]
    )

    # G's norms recomputed inside DDP's backward: the same gradients, bit for bit.
    recomputed, _ = _probe(tmp_path / "ddp-norms", "ddp-norms")
    for a, b in zip(rank0["grads"], recomputed["grads"], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)

    # The control: without the DDP wrappers every optimizer step's gradients differ.
    rank0, rank1 = _probe(tmp_path / "unsynced", "unsynced")
    for a, b in zip(rank0["grads"], rank1["grads"], strict=True):
        assert any(not torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.equal(v, rank1["weights"][-1][k]) for k, v in rank0["weights"][-1].items())


def _workers(launcher: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_killed_worker_restarts_from_last_checkpoint(tmp_path, data):
    iters = 60
    config = write_config(tmp_path / "c.json", tiny_config(data, iters=iters, save_every=5))
    out = tmp_path / "run"
    argv = [*_torchrun_argv(config, out, "--max-restarts=1"), "--resume"]
    launcher = subprocess.Popen(
        argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not state_files(out):
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            time.sleep(0.005)
        victims = _workers(launcher)
        assert len(victims) == 2, victims
        killed_at = checkpoint_step(state_files(out)[0])
        os.kill(victims[1], signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:  # a failed test leaves no workers behind
            for pid in _workers(launcher):
                os.kill(pid, signal.SIGKILL)
            launcher.kill()
    assert launcher.returncode == 0, stderr
    assert killed_at < iters
    assert "resuming from" in stderr  # the restarted workers resumed
    assert checkpoint_step(state_files(out)[0]) == iters
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, iters + 1))


def test_ranks_read_disjoint_slices_of_the_global_batches():
    ranks = [distributed.Context(rank=r, world_size=2) for r in range(2)]
    whole = EpochBatches(12, 4, seed=3)
    parts = [EpochBatches(12, 4, seed=3, shard=ctx.shard(4)) for ctx in ranks]
    for _, batch, a, b in zip(range(7), whole, *parts, strict=False):
        assert a + b == batch and len(a) == 2  # rank 0 the first half, rank 1 the second
    with pytest.raises(ValueError, match="valid: auto, gloo, nccl"):
        distributed.choose_backend("mpi")
