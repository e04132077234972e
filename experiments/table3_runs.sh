#!/usr/bin/env bash
# The Table 3 runs (docs/baselines.md) at the synth-rafd StarGAN preset's scale: every method
# with StarGAN's widths, depths, batch and update steps per model, one thread per run.
# StarGAN's files are the RaFD-only arm of experiments/joint_seeds.sh (synth-rafd with D's
# classifier warmed up), so run that first. Resumable: re-running continues unfinished runs;
# finished ones only rewrite their model file.
#     bash experiments/table3_runs.sh [SEED ...]     (default: 0 1 2)
# Then IcGAN's 2x row and the table (experiments/results/table3.json, docs/baselines.md): the
# commands under "Reproducing it" in docs/baselines.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
    for method in icgan diat cyclegan; do
        .venv/bin/stargan baselines train --method "$method" --seed "$seed" --num-threads 1 \
            --out "runs/t3/$method-s$seed" --resume --quiet
    done
done
