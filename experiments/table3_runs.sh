#!/usr/bin/env bash
# The Table 3 runs (docs/baselines.md) at the synth-rafd StarGAN preset's scale: every method
# with StarGAN's widths, depths, batch and update steps per model, one thread per run.
# StarGAN's files are the RaFD-only arm of experiments/joint_seeds.sh (synth-rafd with D's
# classifier warmed up), so run that first. Resumable: re-running continues unfinished runs;
# finished ones only rewrite their model file.
#     bash experiments/table3_runs.sh [SEED ...]     (default: 0 1 2)
# Then: the table (experiments/results/table3.json, docs/baselines.md):
#     python experiments/table3.py --judge src/stargan/assets/judge-synthfaces-rafd-32.safetensors \
#         --stargan runs/j/single-s{0,1,2} --icgan runs/t3/icgan-s{0,1,2} \
#         --diat runs/t3/diat-s{0,1,2} --cyclegan runs/t3/cyclegan-s{0,1,2} \
#         --json experiments/results/table3.json --write docs/baselines.md
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
