"""Training on a machine another process is using: our step's s/iteration with each thread
setting, alone and beside a busy loop that wants one core, at 32 and 128 px. It is how the
default thread count (docs/performance.md, "Sharing the machine") was chosen.

    python benchmarks/shared_machine.py --presets synth-demo celeba-128 --json out.json

Each measurement is a fresh `train_speed.py --mode ours` process (OpenMP reads its settings
once, at start-up); settings and conditions alternate, so that a drift of the machine spreads
over all of them. The busy loop is one Python process spinning, not pinned: the kernel places
it, as it places a user's other work. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

TRAIN_SPEED = Path(__file__).parent / "train_speed.py"
# name -> (threads, extra environment). "auto" is the CLI's default (`--num-threads 0`).
# libgomp's threads spin GOMP_SPINCOUNT times (300,000 by default) before sleeping at a
# barrier; PASSIVE never spins.
SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "2 threads": (2, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": ""}),
    "2 threads, spin 10,000": (2, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"}),
    "2 threads, spin 1,000": (2, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "1000"}),
    "2 threads, passive wait": (2, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": ""}),
    "1 thread": (1, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": ""}),
}


@contextlib.contextmanager
def busy_loop(on: bool) -> Iterator[None]:
    """A process that keeps one core busy for as long as the block runs (when ``on``)."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def measure(preset: str, threads: int, env: dict[str, str], iters: int, busy: bool) -> float:
    """s/iteration of our step in a fresh process, with or without the busy loop."""
    environ = {k: v for k, v in os.environ.items() if k not in env} | {
        k: v for k, v in env.items() if v
    }
    with tempfile.TemporaryDirectory() as tmp, busy_loop(busy):
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, str(TRAIN_SPEED), "--preset", preset, "--mode", "ours"]
        cmd += ["--threads", str(threads), "--iters", str(iters), "--no-flops"]
        cmd += ["--peak-reps", "0", "--json", str(out)]
        subprocess.run(cmd, check=True, env=environ, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["modes"]["ours"]["s_per_iter"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["synth-demo", "celeba-128"])
    p.add_argument("--iters", type=int, nargs="+", default=[40, 5], help="per preset")
    p.add_argument("--reps", type=int, default=2, help="measurements of each setting")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    iters = dict(zip(args.presets, args.iters * len(args.presets), strict=False))
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    for preset in args.presets:
        runs[preset] = {name: {"alone": [], "busy": []} for name in args.settings}
        for rep in range(args.reps):
            names = args.settings if rep % 2 == 0 else args.settings[::-1]
            for busy in (rep % 2 == 1, rep % 2 == 0):
                for name in names:
                    threads, env = SETTINGS[name]
                    s = measure(preset, threads, env, iters[preset], busy)
                    runs[preset][name]["busy" if busy else "alone"].append(s)
    result = {"cores": os.cpu_count(), "reps": args.reps, "iters": iters, "presets": {}}
    for preset, by_setting in runs.items():
        result["presets"][preset] = {}
        print(f"{preset}: s/iteration, mean of {args.reps} (alone | beside a busy loop)")
        for name, r in by_setting.items():
            alone = sum(r["alone"]) / len(r["alone"])
            busy = sum(r["busy"]) / len(r["busy"])
            result["presets"][preset][name] = {
                "alone_s_per_iter": alone,
                "busy_s_per_iter": busy,
                "slowdown": busy / alone,
                "runs": r,
            }
            print(f"  {name:26s} {alone:8.3f} | {busy:8.3f}  ({busy / alone:.2f}x slower)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
