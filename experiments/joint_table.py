"""The joint-vs-single table (docs/joint.md) from the per-seed JSON of
experiments/joint_seeds.sh: mean ± std over seeds, and every seed's figures.

    python experiments/joint_table.py experiments/results/joint/seed*.json [--write docs/joint.md]
"""

from __future__ import annotations

from generated import mean_std, seed_table_main

ARMS = {
    "joint": "joint (JNT)",
    "single": "RaFD-like only (SNG)",
    "joint_wrong_mask": "joint, wrong mask bit",
}


def table(results: dict[str, dict]) -> str:
    seeds = sorted(results)
    lines = [
        f"Seeds {', '.join(seeds)}: mean ± sample std over seeds; the last column gives each "
        f"seed's accuracy in that order.",
        "",
        "| model (warm-up 200) | expression accuracy % | GT PSNR dB | GT L1 | per seed: accuracy |",
        "|---|---|---|---|---|",
    ]
    for key, label in ARMS.items():
        runs = [results[s][key] for s in seeds]
        acc = [r["expression_accuracy"] for r in runs]
        lines.append(
            f"| {label} | {mean_std(acc)} | {mean_std([r['gt_psnr'] for r in runs], '.2f')} | "
            f"{mean_std([r['gt_l1'] for r in runs], '.4f')} | "
            f"{' / '.join(f'{a:.1f}' for a in acc)} |"
        )
    nothing = [results[s]["single"] for s in seeds]
    lines.append(
        f"| do nothing | | {mean_std([r['do_nothing_gt_psnr'] for r in nothing], '.2f')} | "
        f"{mean_std([r['do_nothing_gt_l1'] for r in nothing], '.4f')} | |"
    )
    gaps = [
        results[s]["single"]["expression_accuracy"] - results[s]["joint"]["expression_accuracy"]
        for s in seeds
    ]
    lines += [
        "",
        f"Single minus joint, expression accuracy (points): {mean_std(gaps)}; per seed "
        + " / ".join(f"{g:+.1f}" for g in gaps)
        + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    seed_table_main(table, "experiments/joint_table.py", __doc__, argv)


if __name__ == "__main__":
    main()
