"""Images per second through the dataset loader, with and without the pre-decoded cache.

    PYTHONPATH=src python benchmarks/loader_speed.py                      # 2,000 images, 128 px
    PYTHONPATH=src python benchmarks/loader_speed.py --workers 0 2 --json out.json
    PYTHONPATH=src python benchmarks/loader_speed.py --root data/celeba   # a real CelebA copy

Without --root it writes CelebA-shaped JPEGs (178 x 218, quality 90, smooth random content
of a similar file size) to a temporary folder. For each cache mode and worker count it builds
the "celeba" dataset (timing construction: header checks, or the cache build), then iterates a
shuffled DataLoader for --epochs epochs, timing each. Epoch 1 of an uncached loader and epochs
2+ of a cached one are the figures to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stargan.config import DataConfig
from stargan.data import build_dataset


def write_fake_celeba(root: Path, n: int, seed: int = 0) -> None:
    """n CelebA-shaped JPEGs and a list_attr_celeba.txt with random 1/-1 values."""
    rng = np.random.default_rng(seed)
    names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    (root / "images").mkdir(parents=True)
    lines = [str(n), " ".join(names)]
    for i in range(n):
        low = rng.integers(0, 256, (14, 12, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize((178, 218), Image.Resampling.BICUBIC)
        img.save(root / "images" / f"{i + 1:06d}.jpg", quality=90)
        lines.append(f"{i + 1:06d}.jpg" + "".join(f" {v:2d}" for v in rng.choice([-1, 1], 5)))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


def run(cfg: DataConfig, epochs: int, batch_size: int) -> dict[str, float | list[float]]:
    start = time.perf_counter()
    ds = build_dataset(cfg, "train")
    build_s = time.perf_counter() - start
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = sum(x.shape[0] for x, _ in loader)
        rates.append(seen / (time.perf_counter() - start))
    return {"images": len(ds), "build_s": build_s, "images_per_s": rates}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--root", help="an existing CelebA-format folder (default: write fake ones)")
    p.add_argument("--num-images", type=int, default=2000, help="fake images to write")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--caches", nargs="+", default=["none", "memory", "disk"])
    p.add_argument("--threads", type=int, default=1, help="torch threads in the main process")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "celeba"
        if not args.root:
            write_fake_celeba(root, args.num_images)
        base = DataConfig(
            name="celeba",
            root=str(root),
            image_size=args.image_size,
            test_size=0 if not args.root else 2000,
            cache_dir=str(Path(tmp) / "cache"),
        )
        results = []
        for cache in args.caches:
            for workers in args.workers:
                cfg = dataclasses.replace(base, cache=cache, num_workers=workers)
                r = run(cfg, args.epochs, args.batch_size)
                results.append({"cache": cache, "workers": workers, **r})
                rates = "  ".join(f"{x:8.0f}" for x in r["images_per_s"])
                print(f"cache={cache:<6} workers={workers}  build {r['build_s']:6.2f} s  "
                      f"images/s per epoch: {rates}", flush=True)  # fmt: skip
        size = sum(f.stat().st_size for f in (root / "images").iterdir()) / len(
            os.listdir(root / "images")
        )

    print()
    print(f"{'cache':<8}{'workers':>8}{'build s':>10}{'epoch 1':>10}{'epoch 2+':>10}  (images/s)")
    for r in results:
        later = r["images_per_s"][1:] or r["images_per_s"]
        print(f"{r['cache']:<8}{r['workers']:>8}{r['build_s']:>10.2f}"
              f"{r['images_per_s'][0]:>10.0f}{sum(later) / len(later):>10.0f}")  # fmt: skip
    summary = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "images": results[0]["images"] if results else 0,
        "mean_jpeg_bytes": round(size),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "pillow": Image.__version__,
        "machine": platform.machine(),
        "results": results,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
