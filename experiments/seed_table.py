"""Mean ± std over seeds of evaluated runs, and their accuracy / PSNR against wall-clock.

    python experiments/seed_table.py --group synth-demo runs/demo-s0 runs/demo-s1 runs/demo-s2 \
        --group synth-long runs/long-s0 runs/long-s1 runs/long-s2 --plot docs/results_curves.png

Each run folder needs results.json (from `stargan evaluate --run DIR`) and, for the curve,
metrics.jsonl with periodic evaluations (`train --eval-every N --eval-judge FILE`). Minutes are
the training clock (`time/train_s`: iterations only, not evaluation or checkpoint writes).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

COLUMNS = {
    "accuracy": "target accuracy %",
    "gt_psnr": "GT PSNR dB",
    "do_nothing_gt_psnr": "do-nothing PSNR dB",
    "gt_l1": "GT L1",
    "do_nothing_gt_l1": "do-nothing L1",
    "rec_l1": "reconstruction L1",
}


def final_metrics(run: Path) -> dict[str, float]:
    """The overall summary of the run's first dataset, and its training minutes."""
    results = json.loads((run / "results.json").read_text())
    overall = results["evaluations"][0]["summary"]["overall"]
    out = {k: float(overall[k]) for k in COLUMNS if k in overall}
    out["minutes"] = curve(run)[-1][0] if (run / "metrics.jsonl").is_file() else float("nan")
    return out


def curve(run: Path) -> list[tuple[float, float, float, float]]:
    """(minutes, accuracy, psnr, do-nothing psnr) of every periodic evaluation, and the end."""
    points, last_t = [], 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        last_t = rec.get("time/train_s", last_t)
        if "eval/accuracy" in rec:
            points.append(
                (
                    last_t / 60,
                    rec["eval/accuracy"],
                    rec.get("eval/psnr", float("nan")),
                    rec.get("eval/do_nothing_psnr", float("nan")),
                )
            )
    if not points or points[-1][0] < last_t / 60:
        points.append((last_t / 60, float("nan"), float("nan"), float("nan")))
    return points


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(groups: dict[str, list[Path]]) -> str:
    keys = ["minutes", *COLUMNS]
    head = ["run", "seeds", "train minutes", *COLUMNS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in groups.items():
        rows = [final_metrics(r) for r in runs]
        cells = [
            mean_std([row[k] for row in rows if k in row]) if any(k in row for row in rows) else "-"
            for k in keys
        ]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(groups: dict[str, list[Path]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_psnr) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, runs) in enumerate(groups.items()):
        colour = f"C{i}"
        for j, run in enumerate(runs):
            pts = [p for p in curve(run) if p[1] == p[1]]
            t = [p[0] for p in pts]
            label = name if j == 0 else None
            ax_acc.plot(t, [p[1] for p in pts], color=colour, alpha=0.8, label=label)
            ax_psnr.plot(t, [p[2] for p in pts], color=colour, alpha=0.8, label=label)
            base = label and f"{name}: do nothing"
            ax_psnr.plot(t, [p[3] for p in pts], color=colour, ls=":", alpha=0.6, label=base)
    ax_acc.set(xlabel="training minutes (training clock)", ylabel="target accuracy % (judge)")
    ax_psnr.set(xlabel="training minutes (training clock)", ylabel="ground-truth PSNR dB")
    for ax in (ax_acc, ax_psnr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "RUN"))
    p.add_argument("--plot", type=Path, help="write the curves here (PNG)")
    args = p.parse_args(argv)
    groups = {g[0]: [Path(r) for r in g[1:]] for g in args.group}
    text = table(groups)
    print(text)
    if args.plot:
        plot(groups, args.plot)
    return {"table": text}


if __name__ == "__main__":
    main()
