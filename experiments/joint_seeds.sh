#!/usr/bin/env bash
# The joint-vs-single comparison (docs/joint.md) on three seeds, both arms with D's classifier
# warmed up, one thread per run. Resumable: re-running continues unfinished runs and skips
# seeds whose JSON exists. Each seed's JSON lands in experiments/results/joint/;
# experiments/joint_table.py makes the table from them.
#     bash experiments/joint_seeds.sh [SEED ...]     (default: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/joint
mkdir -p "$out"
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
    [ -f "$out/seed$seed.json" ] && continue
    for arm in single:synth-rafd joint:synth-joint; do
        .venv/bin/stargan train --preset "${arm#*:}" --seed "$seed" --num-threads 1 \
            --d-cls-warmup 200 --out "runs/j/${arm%%:*}-s$seed" --resume --quiet
    done
    .venv/bin/python experiments/joint_vs_single.py --num 500 \
        --joint "runs/j/joint-s$seed/model.safetensors" \
        --single "runs/j/single-s$seed/model.safetensors" --json "$out/seed$seed.json"
done
