"""Kill -9 anywhere: a run killed at random moments and rerun with the same command ends with
the weights of a run never interrupted, bit for bit.

Each attempt is ``stargan train --config C --out D --resume`` in a child process, SIGKILLed
(no handler runs, nothing is flushed: like a power cut or the OOM killer) at a seeded random
moment: during start-up, during training, or aimed at a checkpoint write (the harness watches
for the write's temporary file and kills on sight; no hook in the library). With
``save_every=1`` about a quarter of the loop's time is spent writing files. A temporary file
found right after a kill shows that the kill landed inside a write. Every attempt must leave
at least one valid checkpoint once the first save has happened, and the finished run no
temporary files; its checkpoint, model file and metrics log must equal the uninterrupted
run's.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from train_procs import (
    assert_bitwise_equal,
    checkpoint_step,
    child_env,
    final_files,
    last_logged_step,
    metrics_without_time,
    run_to_end,
    state_files,
    temporaries,
    tiny_config,
    train_argv,
    valid_states,
    wait_for_step,
    write_config,
    write_tiny_celeba,
)

Kind = Literal["startup", "training", "write"]


@dataclass
class KillReport:
    kinds: list[str] = field(default_factory=list)
    in_write: list[bool] = field(default_factory=list)
    """Whether each kill left a new temporary behind, i.e. landed inside a file write."""
    newest: list[int] = field(default_factory=list)
    """The newest checkpoint's step after each kill."""
    attempts: int = 0

    def landed(self, kind: str) -> str:
        hits = [w for k, w in zip(self.kinds, self.in_write, strict=True) if k == kind]
        return f"{sum(hits)}/{len(hits)}"

    def __str__(self) -> str:
        return (
            f"{len(self.kinds)} kills in {self.attempts} attempts; inside a file write: "
            f"startup {self.landed('startup')}, random in training "
            f"{self.landed('training')}, aimed at a write {self.landed('write')}; newest "
            f"checkpoint after each kill {self.newest}"
        )


def _wait_for_write(proc: subprocess.Popen, out: Path, timeout: float = 30) -> None:
    """Return as soon as a checkpoint or model temporary exists (a write is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if temporaries(out):
            return
        time.sleep(0.0005)


def kill_until_done(argv: list[str], out: Path, plan: list[Kind], seed: int) -> KillReport:
    """Run ``argv``, SIGKILL it once per entry of ``plan``, then run it to the end.

    "startup" kills come a random 0-4 s after launch (importing, loading data, resuming);
    "training" kills a random 0-0.5 s after the attempt's first newly trained step;
    "write" kills, after such a delay, at the first sight of a checkpoint temporary."""
    rng = random.Random(seed)
    report = KillReport()
    saved_once = False
    while True:
        report.attempts += 1
        assert report.attempts <= len(plan) + 5, f"the run does not finish: {report}"
        resume_step = max((checkpoint_step(p) for p in valid_states(out)), default=0)
        logged = last_logged_step(out)  # may run past resume_step until the log is truncated
        kind = plan[len(report.kinds)] if len(report.kinds) < len(plan) else None
        left_before = set(temporaries(out))  # a startup kill may come before their cleanup
        proc = subprocess.Popen(
            argv, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            if kind == "startup":
                time.sleep(rng.uniform(0.0, 4.0))
            elif kind is not None and wait_for_step(proc, out, beyond=max(resume_step, logged)):
                time.sleep(rng.uniform(0.0, 0.5))
                if kind == "write":
                    _wait_for_write(proc, out)
            if kind is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                report.kinds.append(kind)
                report.in_write.append(bool(set(temporaries(out)) - left_before))
                states = state_files(out)
                saved_once = saved_once or bool(states)
                report.newest.append(max((checkpoint_step(p) for p in states), default=0))
                if saved_once:
                    assert valid_states(out), f"no valid checkpoint after kill {report}"
                continue
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        return report


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_celeba(tmp_path_factory.mktemp("celeba"))


def _kill_test(tmp_path: Path, data: Path, iters: int, plan: list[Kind], seed: int):
    config = write_config(tmp_path / "config.json", tiny_config(data, iters, save_every=1))
    reference = tmp_path / "reference"
    done = run_to_end(train_argv(config, reference))
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    t0 = time.perf_counter()
    report = kill_until_done(train_argv(config, out, "--resume"), out, plan, seed)
    seconds = time.perf_counter() - t0

    assert report.kinds == plan
    n = assert_bitwise_equal(final_files(reference), final_files(out))
    print(f"{report}; {n} tensors identical; {seconds:.1f} s")  # docs/reliability.md figures
    assert n > 50  # G, D, both optimizers, the RNG state, the model file
    # The log tells the same story: every step once, with the same losses.
    assert metrics_without_time(out) == metrics_without_time(reference)
    assert not temporaries(out)
    assert [p.name for p in state_files(out)] == [p.name for p in state_files(reference)]
    return report


def test_three_kills_then_identical_weights(tmp_path, data):
    report = _kill_test(tmp_path, data, 60, ["training", "write", "training"], seed=0)
    assert report.in_write[1], "the aimed kill came after the write had finished"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_twenty_kills_anywhere_then_identical_weights(tmp_path, data, seed):
    rng = random.Random(seed)
    plan = rng.choices(["startup", "training", "write"], weights=[1, 2, 1], k=20)
    # Enough iterations that twenty kills fit before the run ends, even on a quiet machine
    # (150 did not: seed 2 finished with two kills of its plan unused).
    report = _kill_test(tmp_path, data, 400, plan, seed)
    assert sum(report.in_write) >= 1
