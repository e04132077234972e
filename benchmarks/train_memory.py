"""Peak resident memory of a whole `stargan train` process: start-up, data, a few iterations
and the end-of-run checkpoint (training state and model file) with its sample grid; beside it
the official 2018 release's step (tests/reference_step.py, as benchmarks/train_speed.py runs
it) for the same iterations, ending in the release's save (torch.save of G's and D's weights).

    taskset -c 1 python benchmarks/train_memory.py --preset celeba-128 --iters 5
    python benchmarks/train_memory.py --preset celeba-128 --mode both --repeats 2 --json out.json
    python benchmarks/record.py -- python benchmarks/train_memory.py --mode both

Ours is the command line itself, `python -m stargan train --preset P --dataset D ...`, on
SynthFaces (rendered, nothing to download): --num-images training images plus 16 held out, at
the preset's image size, batch size and networks, for --iters iterations (default one n_critic
cycle, so G is updated too) and no checkpoint before the last, which every run writes. The
reference trains the same networks on random images of the preset's shape (train_speed.py's
RandomData; 4 batches of them, a few MB).

How memory is measured: each run is a fresh child process. `peak_rss_mib` is the child's
ru_maxrss as os.wait4 returns it when the child exits (the kernel's high-water mark of its
resident set over its whole life, VmHWM at exit). `before_save_mib` is its VmHWM before the
save (ours: /proc/PID/status at the last poll, every --poll seconds, before any file appears
in the run's checkpoints/ folder, which the save's first write creates; the reference reports
its own just before saving): the peak of start-up and training alone, so the save's share is
the difference. --mode both
alternates the modes run by run (ours first on even repeats), so load drift on a shared
machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("ours", "reference")
HELD_OUT = 16


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """The process's VmHWM (peak resident set so far) in MiB, None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def ours_command(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "stargan", "train", "--preset", args.preset]
    cmd += ["--dataset", args.dataset, "--num-images", str(args.num_images)]
    cmd += ["--test-size", str(HELD_OUT), "--num-iters", str(args.iters)]
    cmd += ["--num-iters-decay", "0", "--save-every", str(10**9), "--out", str(out)]
    cmd += ["--num-threads", str(args.threads), "--device", "cpu", "--quiet"]
    return cmd


def reference_command(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, __file__, "--child-reference", str(out), "--preset", args.preset]
    return [*cmd, "--iters", str(args.iters), "--threads", str(args.threads)]


def run_child(cmd: list[str], out: Path, poll: float) -> dict[str, float]:
    """Run ``cmd``; its peak RSS from wait4 and, for ours, its VmHWM at the last poll before
    any file appeared in ``out``/checkpoints (the state is the first file a save writes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    before_save = None
    # wait4, not proc.poll(): reaping the child ourselves gives its own rusage (ru_maxrss).
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        hwm = vm_hwm_mib(proc.pid)
        if hwm is not None and not any(out.glob("checkpoints/*")):
            before_save = hwm
        time.sleep(poll)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    result = {"wall_s": time.perf_counter() - t0, "peak_rss_mib": usage.ru_maxrss / 1024}
    if before_save is not None:
        result["before_save_mib"] = before_save
    report = out / "memory.json"
    if report.is_file():
        result |= json.loads(report.read_text())
    return result


def child_reference(args: argparse.Namespace) -> None:
    """The release's step for ``--iters`` iterations, then its save (torch.save of G and D)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    import train_speed

    out = Path(args.child_reference)
    ns = argparse.Namespace(preset=args.preset, bf16=False, device="cpu", threads=args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer = train_speed.make_trainer(ns, "reference", str(out))
    for _ in range(args.iters):
        train_speed.timed_iteration(ns, trainer)
    before = vm_hwm_mib()
    # The release's Solver.save_model: each network's state_dict, pickled.
    torch.save(trainer.G.state_dict(), out / f"{trainer.step}-G.ckpt")
    torch.save(trainer.D.state_dict(), out / f"{trainer.step}-D.ckpt")
    (out / "memory.json").write_text(json.dumps({"before_save_mib": before}))


def measure(args: argparse.Namespace, mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / mode
        out.mkdir()
        command = ours_command if mode == "ours" else reference_command
        return run_child(command(args, out), out, args.poll)


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in runs for k in r})
    return {f"{k}_max" if k != "wall_s" else k: max(r[k] for r in runs if k in r) for k in keys}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128", help="networks, image size and batch")
    p.add_argument("--dataset", default="synthfaces-celeba", help="ours: the data format")
    p.add_argument("--num-images", type=int, default=64, help="ours: SynthFaces images")
    p.add_argument("--iters", type=int, default=5, help="iterations (default: one n_critic cycle)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--mode", choices=[*MODES, "both"], default="ours")
    p.add_argument("--repeats", type=int, default=1, help="runs of each mode")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between VmHWM reads")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--child-reference", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_reference:
        child_reference(args)
        return

    sys.path.insert(0, str(Path(__file__).parent))
    from record import machine

    modes = MODES if args.mode == "both" else (args.mode,)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for i in range(args.repeats):
        for mode in modes if i % 2 == 0 else modes[::-1]:
            runs[mode].append(measure(args, mode))
            print(f"{mode:9s} " + "  ".join(f"{k} {v:.1f}" for k, v in runs[mode][-1].items()))
    result = {
        "preset": args.preset,
        "dataset": args.dataset,
        "num_images": args.num_images,
        "iterations": args.iters,
        "threads": args.threads,
        "measured_by": "peak_rss_mib: ru_maxrss of the child from os.wait4 (whole process); "
        "before_save_mib: the child's VmHWM (/proc/PID/status) just before its save",
        "machine": machine(),
        "modes": {m: {"runs": r, **summary(r)} for m, r in runs.items()},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
