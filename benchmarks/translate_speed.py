"""Translation as a user meets it, per image and target, beside G's bare forward at the same
batch size: the Python API (`StarGAN.translate`), `translate_files` (decode, G, resize, write)
with the source labels given and inferred by D, and the `stargan translate` command (start-up
and model loading included).

    python benchmarks/translate_speed.py --preset celeba-128 --images 32 --threads 2
    python benchmarks/translate_speed.py --preset synth-demo --images 64 --json out.json

The model is the preset's shape with random weights (G and D in one model file); the inputs
are random PNG photos at 178 x 218 px (CelebA's size), centre-cropped and resized as for any
photo. Each way is timed ``--reps`` times, the ways alternating; the table gives the median.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stargan import checkpoint as ckpt
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.inference import StarGAN, load, translate_files
from stargan.models import build_discriminator, build_generator
from stargan.presets import get_preset


def model_file(preset: str, path: Path) -> tuple[Path, list[str]]:
    """A random-weight model file of ``preset``'s shape; returns it and its label names."""
    cfg = get_preset(preset)
    names = tuple(cfg.data[0].selected_attrs or [f"label{i}" for i in range(5)])
    layout = LabelLayout((LabelSpec(names, "binary"),))
    model_cfg = dataclasses.replace(cfg.model, c_dim=layout.c_dim, n_classes=layout.n_classes)
    torch.manual_seed(0)
    g, d = build_generator(model_cfg), build_discriminator(model_cfg)
    ckpt.save_model_file(path, g, model_cfg, layout, step=0, discriminator=d)
    return path, list(names)


def photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:03d}.png")
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="celeba-128")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--targets", type=int, default=2, help="targets per image")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path, names = model_file(args.preset, Path(tmp) / "model.safetensors")
        folder = photos(Path(tmp) / "in", args.images)
        model = load(path)
        batch = StarGAN.batch_size
        size = model.config.image_size
        targets = [{names[i % len(names)]: 1.0} for i in range(args.targets)]
        source = dict.fromkeys(names, 0.0)
        x = torch.rand(args.images, 3, size, size) * 2 - 1
        c = torch.zeros(args.images, model.layout.c_dim)
        out = Path(tmp) / "out"
        flags = [f"--target={next(iter(t))}" for t in targets]
        cli = [sys.executable, "-m", "stargan", "translate", "--model", str(path)]
        cli += ["--input", str(folder), "--out", str(out), "--quiet", *flags]
        env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))

        def bare() -> None:
            with torch.inference_mode():
                for _ in range(args.targets):
                    for i in range(0, args.images, batch):
                        model.generator(x[i : i + batch], c[i : i + batch])

        ways: dict[str, Callable[[], object]] = {
            "G forward alone": bare,
            "StarGAN.translate": lambda: [model.translate(x, t, source) for t in targets],
            "translate_files, --source given": lambda: translate_files(
                model, folder, out, targets, source=source
            ),
            "translate_files, labels by D": lambda: translate_files(model, folder, out, targets),
            "stargan translate (command)": lambda: subprocess.run(
                cli, check=True, stdout=subprocess.DEVNULL, env=env
            ),
        }
        times: dict[str, list[float]] = {w: [] for w in ways}
        for rep in range(args.reps + 1):  # the first round warms caches and is not kept
            for w in ways if rep % 2 else list(ways)[::-1]:
                t0 = time.perf_counter()
                ways[w]()
                if rep:
                    times[w].append(time.perf_counter() - t0)

    per = args.images * args.targets
    bare_ms = 1e3 * statistics.median(times["G forward alone"]) / per
    rows = []
    print(
        f"{args.preset}: {size} px, {args.images} images x {args.targets} targets, batch "
        f"{batch}, {torch.get_num_threads()} torch thread(s), median of {args.reps}"
    )
    print(f"{'':34s}{'ms/image/target':>16s}{'x G alone':>11s}")
    for w, ts in times.items():
        ms = 1e3 * statistics.median(ts) / per
        rows.append({"way": w, "ms_per_image_target": ms, "ratio_to_g": ms / bare_ms})
        print(f"{w:34s}{ms:16.1f}{ms / bare_ms:11.2f}")
    if args.json:
        result = {
            "preset": args.preset,
            "image_size": size,
            "images": args.images,
            "targets": args.targets,
            "batch": batch,
            "threads": torch.get_num_threads(),
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
