"""Seconds per training iteration for a preset, on random data of the preset's shape.

    python benchmarks/train_speed.py --preset celeba-128 --iters 10
    python benchmarks/train_speed.py --preset synth-demo --iters 50 --json out.json

An iteration is one D update (and a G update every n_critic-th); we time whole n_critic
cycles so the mean is the true average cost per iteration.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

import torch

from stargan.config import RunConfig
from stargan.presets import get_preset
from stargan.training.trainer import Trainer


class RandomData(torch.utils.data.Dataset):
    def __init__(self, spec, n: int, size: int) -> None:
        self.label_spec, self.n, self.size = spec, n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        label = (torch.rand(self.label_spec.n_labels, generator=g) < 0.5).float()
        return torch.rand(3, self.size, self.size, generator=g) * 2 - 1, label


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument(
        "--iters", type=int, default=10, help="timed iterations (rounded up to n_critic)"
    )
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations (default n_critic)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from stargan.data.labels import LabelSpec

    cfg = get_preset(args.preset)
    spec = LabelSpec(cfg.data[0].selected_attrs or ("a", "b", "c", "d", "e"), "binary")
    size, batch, n_critic = cfg.model.image_size, cfg.optim.batch_size, cfg.optim.n_critic
    with tempfile.TemporaryDirectory() as tmp:
        cfg = type(cfg)(
            model=cfg.model,
            loss=cfg.loss,
            optim=cfg.optim,
            data=cfg.data[:1],
            run=RunConfig(out_dir=tmp, sample_every=0, save_every=10**9),
        )
        trainer = Trainer(cfg, datasets=[RandomData(spec, 4 * batch, size)])
        iters = -(-args.iters // n_critic) * n_critic
        warmup = n_critic if args.warmup is None else args.warmup
        for _ in range(warmup):
            trainer.train_iteration()
            trainer.step += 1
        d_only, with_g = [], []
        for _ in range(iters):
            t0 = time.perf_counter()
            trainer.train_iteration()
            (with_g if (trainer.step + 1) % n_critic == 0 else d_only).append(
                time.perf_counter() - t0
            )
            trainer.step += 1
    total = sum(d_only) + sum(with_g)
    result = {
        "preset": args.preset,
        "image_size": size,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "iterations": iters,
        "s_per_iter": total / iters,
        "images_per_s": batch * iters / total,
        "s_per_d_only_iter": sum(d_only) / max(len(d_only), 1),
        "s_per_d_and_g_iter": sum(with_g) / max(len(with_g), 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:{width}s}  {v:.4f}" if isinstance(v, float) else f"{k:{width}s}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
