"""The real-data table (docs/mnist.md) from the per-seed JSON of examples/mnist.py: mean ± std
over seeds, and every seed's figures.

    python experiments/mnist_table.py experiments/results/mnist/seed*.json [--write docs/mnist.md]
"""

from __future__ import annotations

from generated import mean_std, seed_table_main

COLUMNS = {
    "judge_held_out_accuracy": ("judge accuracy on real held-out digits %", ".1f"),
    "target_accuracy": ("target accuracy %", ".1f"),
    "do_nothing_accuracy": ("do nothing %", ".1f"),
    "rec_l1": ("reconstruction L1", ".4f"),
    "train_minutes": ("training minutes", ".1f"),
}


def table(results: dict[str, dict]) -> str:
    seeds = sorted(results, key=int)
    runs = [results[s] for s in seeds]
    first = runs[0]
    lines = [
        f"Seeds {', '.join(seeds)}, {first['iterations']} iterations each at "
        f"`--lambda-cls {first['settings']['lambda_cls']:g}`; "
        f"{first['eval_images']} held-out digits, each translated to all 10 digits; judge "
        f"accuracy on {first['judge_held_out_images']} held-out real digits (one judge, so no "
        f"spread). Mean ± sample std over seeds, then each seed.",
        "",
        "| | " + " | ".join(label for label, _ in COLUMNS.values()) + " |",
        "|---|" + "---|" * len(COLUMNS),
        "| mean ± std | "
        + " | ".join(mean_std([r[k] for r in runs], fmt) for k, (_, fmt) in COLUMNS.items())
        + " |",
    ]
    for seed, r in zip(seeds, runs, strict=True):
        cells = [f"{r[k]:{fmt}}" for k, (_, fmt) in COLUMNS.items()]
        lines.append(f"| seed {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    seed_table_main(table, "experiments/mnist_table.py", __doc__, argv)


if __name__ == "__main__":
    main()
